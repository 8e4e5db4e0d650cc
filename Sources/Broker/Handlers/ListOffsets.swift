import KafkaProtocol
import LogStore

extension RequestHandler {
    func listOffsets(_ request: ListOffsetsRequest, version: Int16) throws -> ListOffsetsResponse {
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
                case -4:  // earliest local (KIP-405): without tiering, the log start
                    r.offset = log.logStartOffset
                default:
                    do {
                        if let found = try log.offset(forTimestamp: p.timestamp) {
                            r.offset = found.offset
                            r.timestamp = found.timestamp
                        }
                    } catch let error as LogStoreError {
                        r.errorCode = KafkaErrorCode(error).rawValue
                    }
                }
                t.partitions.append(r)
            }
            response.topics.append(t)
        }
        return response
    }
}
