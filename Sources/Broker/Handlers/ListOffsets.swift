import KafkaProtocol
import LogStore
import Tiering

extension RequestHandler {
    func listOffsets(_ request: ListOffsetsRequest, version: Int16) async throws -> ListOffsetsResponse {
        var response = ListOffsetsResponse()
        for topic in request.topics {
            var t = ListOffsetsResponse.ListOffsetsTopicResponse(name: topic.name)
            for p in topic.partitions {
                var r = ListOffsetsResponse.ListOffsetsPartitionResponse(partitionIndex: p.partitionIndex, timestamp: -1, offset: -1, leaderEpoch: -1)
                guard let log = topics.log(topic.name, p.partitionIndex) else {
                    r.errorCode = KafkaErrorCode.unknownTopicOrPartition.rawValue
                    t.partitions.append(r)
                    continue
                }
                // Leader epochs exist on the wire from v4.
                if version >= 4 { r.leaderEpoch = 0 }
                switch p.timestamp {
                case -2:  // earliest
                    r.offset = log.logStartOffset
                case -1:  // latest
                    r.offset = log.highWatermark
                case -3:  // max timestamp (KIP-734)
                    if let m = log.maxTimestampOffset() {
                        r.offset = m.offset
                        r.timestamp = m.timestamp
                    }
                case -4:  // earliest local (KIP-405): the first offset on this disk
                    r.offset = log.localLogStartOffset
                default:
                    do {
                        // History below the local log start is looked up in the store first.
                        if let storage = tiering?.storage, log.config.isTiered, log.localLogStartOffset > log.logStartOffset,
                           let info = topics.topic(topic.name),
                           let found = try await storage.offset(forTimestamp: p.timestamp,
                                                                key: RemotePartitionKey(topic: topic.name, topicId: info.id, partition: p.partitionIndex),
                                                                fromOffset: log.logStartOffset),
                           found.segmentBase < log.localLogStartOffset {
                            r.offset = found.offset
                            r.timestamp = found.timestamp
                            break
                        }
                        if let found = try log.offset(forTimestamp: p.timestamp) {
                            r.offset = found.offset
                            r.timestamp = found.timestamp
                        }
                    } catch let error as LogStoreError {
                        r.errorCode = KafkaErrorCode(error).rawValue
                    } catch {
                        logger.warning("tiered timestamp lookup failed", metadata: ["kafka.topic": "\(topic.name)", "error": "\(error)"])
                        r.errorCode = KafkaErrorCode.kafkaStorageError.rawValue
                    }
                }
                t.partitions.append(r)
            }
            response.topics.append(t)
        }
        return response
    }
}
