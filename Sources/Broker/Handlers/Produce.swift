import KafkaProtocol
import LogStore

extension RequestHandler {
    /// Appends every partition's batches; returns the response and, for acks=all, the
    /// offsets that must be fsynced before it may be sent.
    func produce(_ request: ProduceRequest, version: Int16) -> (ProduceResponse, [(PartitionLog, Int64)]) {
        var response = ProduceResponse()
        guard [-1, 0, 1].contains(request.acks) else {
            for topic in request.topicData {
                response.responses.append(.init(name: topic.name, partitionResponses: topic.partitionData.map {
                    .init(index: $0.index, errorCode: KafkaErrorCode.invalidRequiredAcks.rawValue, baseOffset: -1,
                          errorMessage: "acks must be -1, 0 or 1, got \(request.acks)")
                }))
            }
            return (response, [])
        }
        if request.transactionalId != nil {
            for topic in request.topicData {
                response.responses.append(.init(name: topic.name, partitionResponses: topic.partitionData.map {
                    .init(index: $0.index, errorCode: KafkaErrorCode.transactionalIdAuthorizationFailed.rawValue, baseOffset: -1,
                          errorMessage: "transactions are not supported by this broker")
                }))
            }
            return (response, [])
        }
        // Append everything first; with acks=all, fsync afterwards so one fsync per
        // partition covers the whole request (and other requests waiting on it).
        var toSync: [(PartitionLog, Int64)] = []
        for topic in request.topicData {
            var topicResponse = ProduceResponse.TopicProduceResponse(name: topic.name)
            for partition in topic.partitionData {
                var result = ProduceResponse.PartitionProduceResponse(index: partition.index, baseOffset: -1)
                if let log = topics.log(topic.name, partition.index) {
                    do {
                        guard let records = partition.records else {
                            throw LogStoreError(.invalidRecord, "no records")
                        }
                        let info = try log.append(records)
                        result.baseOffset = info.firstOffset
                        result.logAppendTimeMs = info.logAppendTime
                        result.logStartOffset = info.logStartOffset
                        if request.acks == -1 { toSync.append((log, info.lastOffset + 1)) }
                    } catch let error as LogStoreError {
                        result.errorCode = KafkaErrorCode(error).rawValue
                        result.errorMessage = error.message
                        logger.debug("produce rejected", metadata: ["kafka.topic": "\(topic.name)", "kafka.partition": "\(partition.index)",
                                                                   "error": "\(error)"])
                    }
                    catch {
                        result.errorCode = KafkaErrorCode.unknownServerError.rawValue
                        result.errorMessage = "\(error)"
                    }
                } else {
                    result.errorCode = KafkaErrorCode.unknownTopicOrPartition.rawValue
                    result.errorMessage = "unknown topic or partition \(topic.name)-\(partition.index)"
                }
                topicResponse.partitionResponses.append(result)
            }
            response.responses.append(topicResponse)
        }
        return (response, toSync)
    }

    /// Waits until `pending` is fsynced (group commit); on failure the affected
    /// partitions answer KAFKA_STORAGE_ERROR, since their data is not durable.
    func makeDurable(_ response: ProduceResponse, _ pending: [(PartitionLog, Int64)]) async -> ProduceResponse {
        var response = response
        do {
            try await blocking {
                for (log, offset) in pending { try log.flush(upTo: offset) }
            }
        } catch {
            // The data may be in the page cache but is not durable: the client must not
            // count it as acknowledged.
            logger.error("fsync failed", metadata: ["error": "\(error)"])
            for t in response.responses.indices {
                for p in response.responses[t].partitionResponses.indices where response.responses[t].partitionResponses[p].errorCode == 0 {
                    response.responses[t].partitionResponses[p].errorCode = KafkaErrorCode.kafkaStorageError.rawValue
                    response.responses[t].partitionResponses[p].errorMessage = "\(error)"
                }
            }
        }
        return response
    }
}
