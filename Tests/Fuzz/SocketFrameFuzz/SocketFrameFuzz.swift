// libFuzzer entry for the socket frame codec: arbitrary bytes in arbitrary chunks must never crash,
// never over-buffer, and every frame decoded must survive encode → decode unchanged.
// Built by scripts/fuzz.sh (swiftc -sanitize=fuzzer,address over Sources/Shared/SocketProtocol).

@_cdecl("LLVMFuzzerTestOneInput")
public func socketFrameFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    guard size > 0 else { return 0 }
    // First byte picks the chunk size (1...256) so partial feeds are explored too; small frame limit
    // half of the time so the oversized path is reachable with short inputs.
    let chunk = Int(input[0]) + 1
    let maxFrameSize = input[0] & 1 == 0 ? SocketProtocol.maxFrameSize : 64
    var decoder = FrameDecoder(maxFrameSize: maxFrameSize)
    var frames: [SocketFrame] = []
    var i = 1
    do {
        while i < size {
            let end = min(i + chunk, size)
            try decoder.feed(UnsafeRawBufferPointer(rebasing: input[i..<end])) { frames.append($0) }
            precondition(decoder.bufferedByteCount <= maxFrameSize + SocketProtocol.lengthPrefixSize)
            i = end
        }
    } catch {
        _ = error.reason
    }
    // Round trip every decoded frame through the encoder with the default limit.
    let encoder = FrameEncoder()
    var bytes: [UInt8] = []
    for frame in frames {
        do {
            switch frame {
            case .request(let id, let request):
                try encoder.appendRequest(request, id: id, to: &bytes)
            case .response(let id, let op, let response):
                try encoder.appendResponse(response, id: id, operation: op, to: &bytes)
            }
        } catch {
            preconditionFailure("re-encoding a decoded frame failed: \(error)")
        }
    }
    var again = FrameDecoder()
    do {
        let decoded = try again.feed(bytes)
        precondition(decoded == frames, "round trip changed a frame")
    } catch {
        preconditionFailure("re-decoding failed: \(error)")
    }
    return 0
}
