// libFuzzer entry for the gateway's request parser (our layer over http_parser): arbitrary bytes, fed in
// arbitrary chunks, never crash it, never yield a request over the limits, and give the same requests
// and the same verdict as the same bytes fed at once (pipelined requests, chunked bodies, limits).
// Built by scripts/fuzz.sh (swiftc -sanitize=fuzzer,address over Sources/Gateway/HTTP's parser files).

@_cdecl("LLVMFuzzerTestOneInput")
public func httpRequestFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: size)
    // First byte: chunk size 1...128, and small limits half of the time so every limit is reachable.
    let chunk = Int(input[0] & 0x7F) + 1
    var limits = HTTPLimits()
    if input[0] & 0x80 != 0 {
        limits.maxRequestLine = 64
        limits.maxHeaderBytes = 128
        limits.maxHeaderCount = 4
        limits.maxBody = 32
        limits.maxPipelined = 2  // parsing pauses after two requests until they are taken
    }
    let bytes = UnsafeRawBufferPointer(rebasing: input[1...])

    let whole = HTTPRequestParser(limits: limits)
    var wholeError = whole.feed(bytes)
    var wholeRequests = whole.completed
    whole.completed.removeAll()
    while wholeError == nil, whole.hasHeldBytes {
        precondition(wholeRequests.count <= bytes.count, "held bytes never drain")
        wholeError = whole.resume()
        wholeRequests += whole.completed
        whole.completed.removeAll()
    }
    let pieces = HTTPRequestParser(limits: limits)
    var piecesError: HTTPParseError?
    var requests: [HTTPRequest] = []
    var i = 0
    while i < bytes.count, piecesError == nil {
        let end = min(i + chunk, bytes.count)
        piecesError = pieces.feed(UnsafeRawBufferPointer(rebasing: bytes[i..<end]))
        precondition(pieces.completed.count <= limits.maxPipelined, "parsed past the pipelining bound")
        requests += pieces.completed
        pieces.completed.removeAll()
        i = end
    }
    while piecesError == nil, pieces.hasHeldBytes {
        piecesError = pieces.resume()
        requests += pieces.completed
        pieces.completed.removeAll()
    }
    for request in requests + wholeRequests {
        precondition(request.body.count <= limits.maxBody, "body over the limit")
        // Invalid UTF-8 in the target is replaced (U+FFFD, 3 bytes), so count scalars: one per byte at most.
        precondition(request.target.unicodeScalars.count <= limits.maxRequestLine, "target over the limit")
        precondition(request.headers.count <= limits.maxHeaderCount, "too many headers")
        precondition(request.headers.storage.count <= limits.maxHeaderBytes, "header bytes over the limit")
    }
    precondition(
        verdict(wholeError) == verdict(piecesError),
        "chunking changed the verdict: \(wholeError as Any) vs \(piecesError as Any)")
    precondition(requests.count == wholeRequests.count, "chunking changed the number of requests")
    for (a, b) in zip(requests, wholeRequests) {
        precondition(
            a.method == b.method && a.target == b.target && a.body == b.body && a.keepAlive == b.keepAlive
                && a.versionMinor == b.versionMinor && a.headers.storage == b.headers.storage
                && a.headers.count == b.headers.count,
            "chunking changed a request")
    }
    return 0
}

/// Accepted or rejected. Which rejection may depend on read boundaries: http_parser reports a partial header
/// at the end of a read before it sees a bad character further on, so a limit can trip first (both are 4xx
/// and close the connection).
private func verdict(_ error: HTTPParseError?) -> String {
    error == nil ? "ok" : "rejected"
}
