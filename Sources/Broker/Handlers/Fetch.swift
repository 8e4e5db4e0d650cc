import KafkaProtocol
import LogStore
import NIOCore

extension RequestHandler {
    /// Long-polls until `min_bytes` are available or `max_wait_ms` passes, then answers
    /// with the batches as file slices, so they can go out with sendfile.
    func fetch(_ request: FetchRequest, version: Int16) async throws -> (FetchResponse, [FileSlice?]) {
        let deadline = ContinuousClock.now + .milliseconds(max(0, Int(request.maxWaitMs)))
        let minBytes = max(0, Int(request.minBytes))
        while true {
            let sequence = notifier.sequence
            let (response, bytes, hasError) = read(request, version: version)
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
    private func read(_ request: FetchRequest, version: Int16) -> ((FetchResponse, [FileSlice?]), Int, Bool) {
        var response = FetchResponse(sessionId: 0)
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
        return ((response, slices), total, hasError)
    }
}
