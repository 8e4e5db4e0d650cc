import KafkaProtocol
import LogStore
import NIOCore
import Tiering

extension RequestHandler {
    /// Long-polls until `min_bytes` are available or `max_wait_ms` passes, then answers
    /// with the batches as file slices, so they can go out with sendfile.
    func fetch(_ request: FetchRequest, version: Int16) async throws -> (FetchResponse, [FileSlice?]) {
        let deadline = ContinuousClock.now + .milliseconds(max(0, Int(request.maxWaitMs)))
        let minBytes = max(0, Int(request.minBytes))
        while true {
            let sequence = notifier.sequence
            var (response, bytes, hasError, remote) = read(request, version: version)
            if !remote.isEmpty {
                // Offsets below the local log start: read them from the store and answer at
                // once (the store has data for them, so there is nothing to wait for).
                await readTiered(remote, into: &response.0)
                return response
            }
            if bytes >= minBytes || hasError || ContinuousClock.now >= deadline {
                return response
            }
            await notifier.wait(since: sequence, timeout: deadline - ContinuousClock.now)
            if Task.isCancelled { return response }
        }
    }

    /// Reads every requested partition; returns the response (records still empty), the
    /// slice of each partition in response order, the total bytes and whether any
    /// partition failed.
    private func read(_ request: FetchRequest, version: Int16) -> ((FetchResponse, [FileSlice?]), Int, Bool, [TieredRead]) {
        var response = FetchResponse(sessionId: 0)
        var remote: [TieredRead] = []
        var slices: [FileSlice?] = []
        var remaining = request.maxBytes <= 0 ? Int(Int32.max) : Int(request.maxBytes)
        var total = 0
        var hasError = false
        let byId = version >= 13
        for topic in request.topics {
            let info = byId ? topics.topic(id: topic.topicId) : topics.topic(topic.topic)
            var topicResponse = FetchResponse.FetchableTopicResponse(topic: info?.name ?? topic.topic, topicId: topic.topicId)
            for partition in topic.partitions {
                var data = FetchResponse.PartitionData(partitionIndex: partition.partition, highWatermark: -1,
                                                       lastStableOffset: -1, logStartOffset: -1,
                                                       abortedTransactions: [], records: ByteBuffer())
                guard let info, let log = topics.log(info.name, partition.partition) else {
                    data.errorCode = (byId && info == nil ? KafkaErrorCode.unknownTopicId : .unknownTopicOrPartition).rawValue
                    hasError = true
                    topicResponse.partitions.append(data)
                    slices.append(nil)
                    continue
                }
                var slice: FileSlice?
                do {
                    // KIP-74: the first batch of the response comes back whole even when larger
                    // than the limits; after that, stop at the response limit.
                    let limit = total == 0 ? Int(max(partition.partitionMaxBytes, 1)) : min(Int(partition.partitionMaxBytes), remaining)
                    if limit > 0 {
                        let result = try log.read(from: partition.fetchOffset, maxBytes: limit)
                        slice = result.slice
                        data.highWatermark = result.highWatermark
                        data.lastStableOffset = result.lastStableOffset
                        data.logStartOffset = result.logStartOffset
                        total += result.byteCount
                        remaining -= result.byteCount
                    } else {
                        data.highWatermark = log.highWatermark
                        data.lastStableOffset = data.highWatermark
                        data.logStartOffset = log.logStartOffset
                    }
                } catch let error as LogStoreError where error.kind == .offsetTiered && tiering != nil {
                    data.highWatermark = log.highWatermark
                    data.lastStableOffset = data.highWatermark
                    data.logStartOffset = log.logStartOffset
                    remote.append(TieredRead(topicIndex: response.responses.count, partitionIndex: topicResponse.partitions.count,
                                             key: RemotePartitionKey(topic: info.name, topicId: info.id, partition: partition.partition),
                                             offset: partition.fetchOffset, maxBytes: Int(max(partition.partitionMaxBytes, 1))))
                } catch let error as LogStoreError {
                    data.errorCode = KafkaErrorCode(error).rawValue
                    data.highWatermark = log.highWatermark
                    data.lastStableOffset = data.highWatermark
                    data.logStartOffset = log.logStartOffset
                    hasError = true
                } catch {
                    data.errorCode = KafkaErrorCode.kafkaStorageError.rawValue
                    hasError = true
                }
                topicResponse.partitions.append(data)
                slices.append(slice)
            }
            response.responses.append(topicResponse)
        }
        return ((response, slices), total, hasError, remote)
    }

    /// A partition's fetch that tiered storage serves.
    struct TieredRead: Sendable {
        var topicIndex: Int
        var partitionIndex: Int
        var key: RemotePartitionKey
        var offset: Int64
        var maxBytes: Int
    }

    /// Reads the tiered partitions of a fetch in parallel and puts their batches in the
    /// response. A partition the store cannot serve gets an error code of its own.
    private func readTiered(_ reads: [TieredRead], into response: inout FetchResponse) async {
        guard let storage = tiering?.storage else { return }
        let logger = self.logger
        let results = await withTaskGroup(of: (Int, Result<ByteBuffer?, any Error>).self) { group in
            for (i, read) in reads.enumerated() {
                group.addTask {
                    do {
                        return (i, .success(try await storage.read(read.key, offset: read.offset, maxBytes: read.maxBytes)))
                    } catch {
                        return (i, .failure(error))
                    }
                }
            }
            var out: [(Int, Result<ByteBuffer?, any Error>)] = []
            for await item in group { out.append(item) }
            return out.sorted { $0.0 < $1.0 }.map(\.1)
        }
        for (read, result) in zip(reads, results) {
            switch result {
            case .success(let bytes?):
                response.responses[read.topicIndex].partitions[read.partitionIndex].records = bytes
            case .success(nil):
                response.responses[read.topicIndex].partitions[read.partitionIndex].errorCode = KafkaErrorCode.offsetOutOfRange.rawValue
            case .failure(let error):
                logger.warning("tiered read failed", metadata: ["kafka.topic": "\(read.key.topic)", "kafka.partition": "\(read.key.partition)",
                                                               "offset": "\(read.offset)", "error": "\(error)"])
                response.responses[read.topicIndex].partitions[read.partitionIndex].errorCode = KafkaErrorCode.kafkaStorageError.rawValue
            }
        }
    }
}
