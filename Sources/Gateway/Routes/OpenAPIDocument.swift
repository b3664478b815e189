// The OpenAPI document served at /openapi.json: an embedded copy of openapi/openapi.json (no file to ship).
// After editing openapi/openapi.json, regenerate this file with
//   REGENERATE_OPENAPI=1 swift test --skip-build --filter OpenAPITests
// (the test rewrites it; without the variable it fails while the two differ).

/// The document, byte-for-byte as in openapi/openapi.json. Immutable; any thread.
enum OpenAPIDocument {
    static let text = #"""
        {
          "openapi": "3.0.3",
          "info": {
            "title": "k8s-micro gateway API",
            "version": "0.1.0",
            "description": "HTTP API of k8s-micro (SPEC \u00a75), served by the gateway on gateway.port."
          },
          "paths": {
            "/": {
              "get": {
                "operationId": "root",
                "summary": "Demo: fixed JSON",
                "responses": {
                  "200": {
                    "description": "Fixed demo object",
                    "content": {
                      "application/json": {
                        "schema": {
                          "type": "object",
                          "properties": {
                            "str": {
                              "type": "string",
                              "enum": [
                                "params.a"
                              ]
                            }
                          },
                          "required": [
                            "str"
                          ],
                          "additionalProperties": false
                        }
                      }
                    }
                  }
                }
              }
            },
            "/hello": {
              "get": {
                "operationId": "hello",
                "summary": "Demo: greeting",
                "responses": {
                  "200": {
                    "description": "Hello back",
                    "content": {
                      "text/plain": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  }
                }
              }
            },
            "/string/{a}": {
              "get": {
                "operationId": "smoke",
                "summary": "Demo: echo with prefix Smoke",
                "parameters": [
                  {
                    "name": "a",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string",
                      "minLength": 1
                    }
                  }
                ],
                "responses": {
                  "200": {
                    "description": "Smoke followed by a",
                    "content": {
                      "text/plain": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  },
                  "400": {
                    "description": "Malformed percent-encoding",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  }
                }
              }
            },
            "/count": {
              "get": {
                "operationId": "count",
                "summary": "Demo: increments and returns a counter",
                "responses": {
                  "200": {
                    "description": "The counter after incrementing",
                    "content": {
                      "application/json": {
                        "schema": {
                          "type": "object",
                          "properties": {
                            "count": {
                              "type": "integer",
                              "minimum": 1
                            }
                          },
                          "required": [
                            "count"
                          ],
                          "additionalProperties": false
                        }
                      }
                    }
                  }
                }
              }
            },
            "/chaser/{key}": {
              "get": {
                "operationId": "getChaser",
                "summary": "Chaser aggregate of a key",
                "parameters": [
                  {
                    "name": "key",
                    "in": "path",
                    "required": true,
                    "description": "Record key (UTF-8, percent-encoded in the path)",
                    "schema": {
                      "type": "string",
                      "minLength": 1
                    }
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The aggregate",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/ChaserAggregate"
                        }
                      }
                    }
                  },
                  "400": {
                    "description": "Malformed key encoding",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  },
                  "404": {
                    "description": "Unknown key",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  },
                  "421": {
                    "description": "Forwarded request (X-K8s-Micro-Forwarded) reached a pod that no longer owns the key",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  },
                  "500": {
                    "description": "Ingestor failure",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  },
                  "503": {
                    "description": "Ingestor unreachable or partition restoring; retry later",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    },
                    "headers": {
                      "Retry-After": {
                        "description": "Seconds to wait before retrying",
                        "schema": {
                          "type": "integer",
                          "minimum": 1
                        }
                      }
                    }
                  }
                }
              }
            },
            "/chaser": {
              "get": {
                "operationId": "listChaserKeys",
                "summary": "Keys of the chaser store",
                "parameters": [
                  {
                    "name": "scope",
                    "in": "query",
                    "required": false,
                    "description": "local (this pod's keys, default) or cluster (the keys of every pod, merged and de-duplicated, in byte order)",
                    "schema": {
                      "type": "string",
                      "enum": [
                        "local",
                        "cluster"
                      ],
                      "default": "local"
                    }
                  },
                  {
                    "name": "limit",
                    "in": "query",
                    "required": false,
                    "description": "Most keys returned",
                    "schema": {
                      "type": "integer",
                      "minimum": 1,
                      "maximum": 10000,
                      "default": 1000
                    }
                  },
                  {
                    "name": "cursor",
                    "in": "query",
                    "required": false,
                    "description": "Opaque continuation: the `next` value of the previous page (keys after it are returned; keys are in byte order)",
                    "schema": {
                      "type": "string",
                      "pattern": "^[A-Za-z0-9_-]*$"
                    }
                  }
                ],
                "responses": {
                  "200": {
                    "description": "A page of keys",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/KeyPage"
                        }
                      }
                    }
                  },
                  "400": {
                    "description": "Bad limit, scope or cursor",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  },
                  "502": {
                    "description": "scope=cluster: another pod answered an unreadable listing",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  },
                  "503": {
                    "description": "Ingestor unreachable or a partition restoring; with scope=cluster also a pod unreachable or a partition without a live owner (never a partial listing); retry later",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    },
                    "headers": {
                      "Retry-After": {
                        "description": "Seconds to wait before retrying",
                        "schema": {
                          "type": "integer",
                          "minimum": 1
                        }
                      }
                    }
                  }
                }
              }
            },
            "/billing/{key}": {
              "get": {
                "operationId": "getBilling",
                "summary": "Billing aggregate of a key",
                "parameters": [
                  {
                    "name": "key",
                    "in": "path",
                    "required": true,
                    "description": "Record key (UTF-8, percent-encoded in the path)",
                    "schema": {
                      "type": "string",
                      "minLength": 1
                    }
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The aggregate",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/BillAggregate"
                        }
                      }
                    }
                  },
                  "400": {
                    "description": "Malformed key encoding",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  },
                  "404": {
                    "description": "Unknown key",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  },
                  "421": {
                    "description": "Forwarded request (X-K8s-Micro-Forwarded) reached a pod that no longer owns the key",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  },
                  "500": {
                    "description": "Ingestor failure",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  },
                  "503": {
                    "description": "Ingestor unreachable or partition restoring; retry later",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    },
                    "headers": {
                      "Retry-After": {
                        "description": "Seconds to wait before retrying",
                        "schema": {
                          "type": "integer",
                          "minimum": 1
                        }
                      }
                    }
                  }
                }
              }
            },
            "/billing": {
              "get": {
                "operationId": "listBillingKeys",
                "summary": "Keys of the billing store",
                "parameters": [
                  {
                    "name": "scope",
                    "in": "query",
                    "required": false,
                    "description": "local (this pod's keys, default) or cluster (the keys of every pod, merged and de-duplicated, in byte order)",
                    "schema": {
                      "type": "string",
                      "enum": [
                        "local",
                        "cluster"
                      ],
                      "default": "local"
                    }
                  },
                  {
                    "name": "limit",
                    "in": "query",
                    "required": false,
                    "description": "Most keys returned",
                    "schema": {
                      "type": "integer",
                      "minimum": 1,
                      "maximum": 10000,
                      "default": 1000
                    }
                  },
                  {
                    "name": "cursor",
                    "in": "query",
                    "required": false,
                    "description": "Opaque continuation: the `next` value of the previous page (keys after it are returned; keys are in byte order)",
                    "schema": {
                      "type": "string",
                      "pattern": "^[A-Za-z0-9_-]*$"
                    }
                  }
                ],
                "responses": {
                  "200": {
                    "description": "A page of keys",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/KeyPage"
                        }
                      }
                    }
                  },
                  "400": {
                    "description": "Bad limit, scope or cursor",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  },
                  "502": {
                    "description": "scope=cluster: another pod answered an unreadable listing",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  },
                  "503": {
                    "description": "Ingestor unreachable or a partition restoring; with scope=cluster also a pod unreachable or a partition without a live owner (never a partial listing); retry later",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    },
                    "headers": {
                      "Retry-After": {
                        "description": "Seconds to wait before retrying",
                        "schema": {
                          "type": "integer",
                          "minimum": 1
                        }
                      }
                    }
                  }
                }
              }
            },
            "/events": {
              "post": {
                "operationId": "publishEvent",
                "summary": "Publish one input event (answered after the broker's ack)",
                "requestBody": {
                  "required": true,
                  "content": {
                    "application/json": {
                      "schema": {
                        "oneOf": [
                          {
                            "$ref": "#/components/schemas/ChaserEvent"
                          },
                          {
                            "$ref": "#/components/schemas/BillEvent"
                          },
                          {
                            "$ref": "#/components/schemas/PaymentRequestEvent"
                          },
                          {
                            "$ref": "#/components/schemas/PaymentFailedEvent"
                          }
                        ],
                        "discriminator": {
                          "propertyName": "type",
                          "mapping": {
                            "com.polecatworks.chaser.Chaser": "#/components/schemas/ChaserEvent",
                            "com.polecatworks.billing.Bill": "#/components/schemas/BillEvent",
                            "com.polecatworks.billing.PaymentRequest": "#/components/schemas/PaymentRequestEvent",
                            "com.polecatworks.billing.PaymentFailed": "#/components/schemas/PaymentFailedEvent"
                          }
                        }
                      }
                    }
                  }
                },
                "responses": {
                  "202": {
                    "description": "Produced; where it landed",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/PublishReceipt"
                        }
                      }
                    }
                  },
                  "400": {
                    "description": "Bad JSON or fields (message = reason)",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  },
                  "413": {
                    "description": "Body over 64 KiB",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  },
                  "415": {
                    "description": "Not application/json",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  },
                  "500": {
                    "description": "Ingestor failure",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    }
                  },
                  "503": {
                    "description": "Ingestor unreachable or partition restoring; retry later",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Error"
                        }
                      }
                    },
                    "headers": {
                      "Retry-After": {
                        "description": "Seconds to wait before retrying",
                        "schema": {
                          "type": "integer",
                          "minimum": 1
                        }
                      }
                    }
                  }
                }
              }
            },
            "/openapi.json": {
              "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {
                  "200": {
                    "description": "OpenAPI 3 document",
                    "content": {
                      "application/json": {
                        "schema": {
                          "type": "object"
                        }
                      }
                    }
                  }
                }
              }
            }
          },
          "components": {
            "schemas": {
              "Error": {
                "type": "object",
                "properties": {
                  "error": {
                    "type": "string",
                    "description": "machine code"
                  },
                  "message": {
                    "type": "string"
                  }
                },
                "required": [
                  "error",
                  "message"
                ],
                "additionalProperties": false
              },
              "Bill": {
                "type": "object",
                "properties": {
                  "billId": {
                    "type": "string"
                  },
                  "customerId": {
                    "type": "string"
                  },
                  "orderId": {
                    "type": "string"
                  },
                  "amountCents": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "currency": {
                    "type": "string"
                  },
                  "issuedAt": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "dueDate": {
                    "type": "integer",
                    "format": "int64"
                  }
                },
                "required": [
                  "billId",
                  "customerId",
                  "orderId",
                  "amountCents",
                  "currency",
                  "issuedAt",
                  "dueDate"
                ],
                "additionalProperties": false
              },
              "PaymentRequest": {
                "type": "object",
                "properties": {
                  "paymentId": {
                    "type": "string"
                  },
                  "billId": {
                    "type": "string"
                  },
                  "customerId": {
                    "type": "string"
                  },
                  "amountCents": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "currency": {
                    "type": "string"
                  },
                  "requestedAt": {
                    "type": "integer",
                    "format": "int64"
                  }
                },
                "required": [
                  "paymentId",
                  "billId",
                  "customerId",
                  "amountCents",
                  "currency",
                  "requestedAt"
                ],
                "additionalProperties": false
              },
              "PaymentFailed": {
                "type": "object",
                "properties": {
                  "paymentId": {
                    "type": "string"
                  },
                  "billId": {
                    "type": "string"
                  },
                  "customerId": {
                    "type": "string"
                  },
                  "failureReason": {
                    "type": "string"
                  },
                  "failedAt": {
                    "type": "integer",
                    "format": "int64"
                  }
                },
                "required": [
                  "paymentId",
                  "billId",
                  "customerId",
                  "failureReason",
                  "failedAt"
                ],
                "additionalProperties": false
              },
              "ChaserAggregate": {
                "type": "object",
                "properties": {
                  "type": {
                    "type": "string",
                    "enum": [
                      "com.polecatworks.chaser.Aggregate"
                    ]
                  },
                  "names": {
                    "type": "array",
                    "items": {
                      "type": "string"
                    }
                  },
                  "count": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "latest": {
                    "type": "integer",
                    "format": "int64",
                    "nullable": true
                  },
                  "longest": {
                    "type": "integer",
                    "format": "int64",
                    "nullable": true
                  }
                },
                "required": [
                  "type",
                  "names",
                  "count",
                  "latest",
                  "longest"
                ],
                "additionalProperties": false
              },
              "BillAggregate": {
                "type": "object",
                "properties": {
                  "type": {
                    "type": "string",
                    "enum": [
                      "com.polecatworks.billing.BillAggregate"
                    ]
                  },
                  "bill": {
                    "allOf": [
                      {
                        "$ref": "#/components/schemas/Bill"
                      }
                    ],
                    "nullable": true
                  },
                  "paymentRequests": {
                    "type": "array",
                    "items": {
                      "$ref": "#/components/schemas/PaymentRequest"
                    }
                  },
                  "lastPaymentFailed": {
                    "allOf": [
                      {
                        "$ref": "#/components/schemas/PaymentFailed"
                      }
                    ],
                    "nullable": true
                  },
                  "errored": {
                    "type": "boolean"
                  }
                },
                "required": [
                  "type",
                  "bill",
                  "paymentRequests",
                  "lastPaymentFailed",
                  "errored"
                ],
                "additionalProperties": false
              },
              "KeyPage": {
                "type": "object",
                "properties": {
                  "keys": {
                    "type": "array",
                    "items": {
                      "type": "string"
                    }
                  },
                  "next": {
                    "type": "string",
                    "nullable": true,
                    "description": "cursor of the next page; null at the end"
                  }
                },
                "required": [
                  "keys",
                  "next"
                ],
                "additionalProperties": false
              },
              "ChaserEvent": {
                "type": "object",
                "properties": {
                  "type": {
                    "type": "string",
                    "enum": [
                      "com.polecatworks.chaser.Chaser"
                    ]
                  },
                  "name": {
                    "type": "string"
                  },
                  "id": {
                    "type": "string"
                  },
                  "sent": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "ttl": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "previous": {
                    "type": "integer",
                    "format": "int64",
                    "nullable": true
                  }
                },
                "required": [
                  "type",
                  "name",
                  "id",
                  "sent",
                  "ttl"
                ],
                "additionalProperties": false
              },
              "BillEvent": {
                "type": "object",
                "properties": {
                  "type": {
                    "type": "string",
                    "enum": [
                      "com.polecatworks.billing.Bill"
                    ]
                  },
                  "billId": {
                    "type": "string"
                  },
                  "customerId": {
                    "type": "string"
                  },
                  "orderId": {
                    "type": "string"
                  },
                  "amountCents": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "currency": {
                    "type": "string"
                  },
                  "issuedAt": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "dueDate": {
                    "type": "integer",
                    "format": "int64"
                  }
                },
                "required": [
                  "type",
                  "billId",
                  "customerId",
                  "orderId",
                  "amountCents",
                  "currency",
                  "issuedAt",
                  "dueDate"
                ],
                "additionalProperties": false
              },
              "PaymentRequestEvent": {
                "type": "object",
                "properties": {
                  "type": {
                    "type": "string",
                    "enum": [
                      "com.polecatworks.billing.PaymentRequest"
                    ]
                  },
                  "paymentId": {
                    "type": "string"
                  },
                  "billId": {
                    "type": "string"
                  },
                  "customerId": {
                    "type": "string"
                  },
                  "amountCents": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "currency": {
                    "type": "string"
                  },
                  "requestedAt": {
                    "type": "integer",
                    "format": "int64"
                  }
                },
                "required": [
                  "type",
                  "paymentId",
                  "billId",
                  "customerId",
                  "amountCents",
                  "currency",
                  "requestedAt"
                ],
                "additionalProperties": false
              },
              "PaymentFailedEvent": {
                "type": "object",
                "properties": {
                  "type": {
                    "type": "string",
                    "enum": [
                      "com.polecatworks.billing.PaymentFailed"
                    ]
                  },
                  "paymentId": {
                    "type": "string"
                  },
                  "billId": {
                    "type": "string"
                  },
                  "customerId": {
                    "type": "string"
                  },
                  "failureReason": {
                    "type": "string"
                  },
                  "failedAt": {
                    "type": "integer",
                    "format": "int64"
                  }
                },
                "required": [
                  "type",
                  "paymentId",
                  "billId",
                  "customerId",
                  "failureReason",
                  "failedAt"
                ],
                "additionalProperties": false
              },
              "PublishReceipt": {
                "type": "object",
                "properties": {
                  "topic": {
                    "type": "string"
                  },
                  "partition": {
                    "type": "integer",
                    "format": "int32"
                  },
                  "offset": {
                    "type": "integer",
                    "format": "int64"
                  }
                },
                "required": [
                  "topic",
                  "partition",
                  "offset"
                ],
                "additionalProperties": false
              }
            }
          }
        }
        """#

    /// The response body (the file ends with a newline).
    static let bytes: [UInt8] = Array((text + "\n").utf8)
}
