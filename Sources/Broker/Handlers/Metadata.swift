import KafkaProtocol

extension RequestHandler {
    func metadata(_ request: MetadataRequest, version: Int16) throws -> MetadataResponse {
        let nodeId = configuration.nodeId
        var response = MetadataResponse(
            brokers: [.init(nodeId: nodeId, host: advertisedHost, port: Int32(advertisedPort), rack: nil)],
            clusterId: topics.clusterId,
            controllerId: nodeId
        )
        // v0: an empty list means all topics. v1+: null means all, empty means none.
        let requested: [MetadataRequest.MetadataRequestTopic]?
        if version == 0, request.topics?.isEmpty ?? true {
            requested = nil
        } else {
            requested = request.topics
        }
        let autoCreate = configuration.autoCreateTopics && (version < 4 || request.allowAutoTopicCreation)
        guard let requested else {
            response.topics = topics.allTopics().map { describe($0) }
            return response
        }
        for wanted in requested {
            if let name = wanted.name {
                if let info = topics.topic(name) {
                    response.topics.append(describe(info))
                } else if autoCreate, TopicManager.validateName(name) == nil {
                    do {
                        let info = try topics.createTopic(name: name, partitions: -1, replicationFactor: -1, configs: [:])
                        response.topics.append(describe(info))
                    } catch let error as TopicError where error.code == .topicAlreadyExists {
                        if let info = topics.topic(name) { response.topics.append(describe(info)) }
                    }
                } else {
                    let code: KafkaErrorCode = TopicManager.validateName(name) == nil ? .unknownTopicOrPartition : .invalidTopicException
                    response.topics.append(.init(errorCode: code.rawValue, name: name))
                }
            } else if let info = topics.topic(id: wanted.topicId) {
                response.topics.append(describe(info))
            } else {
                response.topics.append(.init(errorCode: KafkaErrorCode.unknownTopicId.rawValue, name: nil, topicId: wanted.topicId))
            }
        }
        return response
    }

    private func describe(_ info: TopicInfo) -> MetadataResponse.MetadataResponseTopic {
        let node = configuration.nodeId
        return .init(
            errorCode: 0, name: info.name, topicId: info.id, isInternal: false,
            partitions: (0..<info.partitionCount).map {
                .init(errorCode: 0, partitionIndex: $0, leaderId: node, leaderEpoch: 0,
                      replicaNodes: [node], isrNodes: [node], offlineReplicas: [])
            }
        )
    }
}
