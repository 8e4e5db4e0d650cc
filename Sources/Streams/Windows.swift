/// How elements are grouped into windows.
///
/// Count windows close after every `n` elements of one source partition (and key, when
/// keyed): on a one-partition topic that is the tutorial's "every 30 records". Time
/// windows use event time (the record timestamp, or what the pipeline's `eventTime`
/// extracts) and close once the watermark (the largest event time seen so far, across
/// partitions) passes their end plus the allowed lateness; an element that arrives for
/// a window already closed is dropped and counted in `WindowState.lateDropped`.
public enum WindowSpec: Sendable, Hashable, Codable {
    /// Every `n` elements per partition (and key).
    case count(Int)
    /// Back-to-back windows of `sizeMs`, starting at multiples of `sizeMs` shifted by
    /// `offsetMs` from the epoch (a week starting on Monday: size 7 days, offset 4 days,
    /// since 1970-01-01 was a Thursday).
    case tumbling(sizeMs: Int64, offsetMs: Int64 = 0, allowedLatenessMs: Int64 = 0)
    /// Overlapping windows of `sizeMs` starting every `advanceMs`: an element belongs to
    /// `sizeMs / advanceMs` of them.
    case hopping(sizeMs: Int64, advanceMs: Int64, offsetMs: Int64 = 0, allowedLatenessMs: Int64 = 0)
    /// Calendar months in UTC.
    case calendarMonths(allowedLatenessMs: Int64 = 0)

    /// Throws for sizes that cannot make windows.
    public func validate() throws {
        switch self {
        case .count(let n):
            guard n > 0 else { throw StreamsError(.invalidArgument, "a count window needs at least 1 element, got \(n)") }
        case .tumbling(let size, _, let lateness):
            guard size > 0, lateness >= 0 else { throw StreamsError(.invalidArgument, "a tumbling window needs size > 0 and lateness >= 0") }
        case .hopping(let size, let advance, _, let lateness):
            guard size > 0, advance > 0, advance <= size, lateness >= 0 else {
                throw StreamsError(.invalidArgument, "a hopping window needs 0 < advance <= size and lateness >= 0")
            }
        case .calendarMonths(let lateness):
            guard lateness >= 0 else { throw StreamsError(.invalidArgument, "allowed lateness must be >= 0") }
        }
    }

    var allowedLatenessMs: Int64 {
        switch self {
        case .count: return 0
        case .tumbling(_, _, let l), .hopping(_, _, _, let l), .calendarMonths(let l): return l
        }
    }

    /// The time windows `[start, end)` holding an element at `time`, oldest first.
    func windows(containing time: Int64) -> [(start: Int64, end: Int64)] {
        switch self {
        case .count:
            return []
        case .tumbling(let size, let offset, _):
            let start = floorDiv(time - offset, size) * size + offset
            return [(start, start + size)]
        case .hopping(let size, let advance, let offset, _):
            var start = floorDiv(time - offset, advance) * advance + offset
            var out: [(Int64, Int64)] = []
            while start + size > time {
                out.append((start, start + size))
                start -= advance
            }
            return out.reversed()
        case .calendarMonths:
            let days = floorDiv(time, 86_400_000)
            let (y, m, _) = civil(fromDays: days)
            let start = daysFromCivil(y, m, 1) * 86_400_000
            let end = (m == 12 ? daysFromCivil(y + 1, 1, 1) : daysFromCivil(y, m + 1, 1)) * 86_400_000
            return [(start, end)]
        }
    }
}

/// One closed window's result.
public struct WindowResult<Output> {
    /// Count windows: the window's number within its partition and key, from 1 (the
    /// tutorial's `month_id`). Time windows: the start in ms since the epoch.
    public var id: Int64
    /// The source partition (count windows only).
    public var partition: Int32?
    public var key: String?
    /// Time windows only: `[start, end)` in ms since the epoch.
    public var start: Int64?
    public var end: Int64?
    /// How many elements the window holds.
    public var count: Int
    public var value: Output
}

extension WindowResult: Sendable where Output: Sendable {}

/// The open windows of a pipeline: what a checkpoint stores so a restart continues them.
public struct WindowState<S: Codable & Sendable>: Codable, Sendable {
    struct CountKey: Hashable, Codable, Sendable {
        var partition: Int32
        var key: String?
    }
    struct CountSlot: Codable, Sendable {
        var lastId: Int64
        var count: Int
        var state: S?
    }
    struct TimeKey: Hashable, Codable, Sendable, Comparable {
        var end: Int64
        var start: Int64
        var key: String?
        static func < (a: Self, b: Self) -> Bool {
            (a.end, a.start, a.key ?? "") < (b.end, b.start, b.key ?? "")
        }
    }
    struct TimeSlot: Codable, Sendable {
        var count: Int
        var state: S
    }
    var countSlots: [CountKey: CountSlot] = [:]
    var timeSlots: [TimeKey: TimeSlot] = [:]
    /// The largest event time seen (ms), `Int64.min` before the first element.
    public internal(set) var watermark: Int64 = .min
    /// Elements dropped because every window they belonged to had closed.
    public internal(set) var lateDropped: Int64 = 0

    public init() {}

    /// How many windows are open (started and not yet emitted).
    public var openWindows: Int { countSlots.values.filter { $0.count > 0 }.count + timeSlots.count }
}

/// Assigns elements to windows and folds them with an aggregation; a pure state machine
/// (no I/O), so a pipeline can checkpoint `state` and tests can drive it with values.
public struct Windower<A: Aggregation> {
    public let spec: WindowSpec
    public let aggregation: A
    public var state: WindowState<A.State>

    public init(spec: WindowSpec, aggregation: A, state: WindowState<A.State> = .init()) throws {
        try spec.validate()
        self.spec = spec
        self.aggregation = aggregation
        self.state = state
    }

    /// Adds one element and appends every window it closes to `closed`, oldest first.
    ///
    /// `eventTime` matters for time windows only; `partition` for count windows only.
    public mutating func add(_ input: A.Input, partition: Int32, key: String? = nil, eventTime: Int64,
                             closed: inout [WindowResult<A.Output>]) {
        if case .count(let n) = spec {
            let slotKey = WindowState<A.State>.CountKey(partition: partition, key: key)
            let aggregation = self.aggregation
            // One hash lookup, the slot updated in place.
            let result: A.Output? = {
                (_ slot: inout WindowState<A.State>.CountSlot) -> A.Output? in
                if slot.state == nil { slot.state = aggregation.initialState() }
                aggregation.add(input, to: &slot.state!)
                slot.count += 1
                guard slot.count == n else { return nil }
                slot.lastId += 1
                let value = aggregation.result(of: slot.state!, count: n)
                slot.count = 0
                slot.state = nil
                return value
            }(&state.countSlots[slotKey, default: .init(lastId: 0, count: 0, state: nil)])
            if let result {
                closed.append(WindowResult(id: state.countSlots[slotKey]!.lastId, partition: partition, key: key, start: nil, end: nil,
                                           count: n, value: result))
            }
            return
        }
        let lateness = spec.allowedLatenessMs
        let watermark = max(state.watermark, eventTime)
        var accepted = false
        for w in spec.windows(containing: eventTime) {
            // Closed already (or closing now without ever having been opened): too late.
            if state.watermark != .min, w.end + lateness <= state.watermark { continue }
            accepted = true
            let k = WindowState<A.State>.TimeKey(end: w.end, start: w.start, key: key)
            var slot = state.timeSlots[k] ?? .init(count: 0, state: aggregation.initialState())
            aggregation.add(input, to: &slot.state)
            slot.count += 1
            state.timeSlots[k] = slot
        }
        if !accepted { state.lateDropped += 1 }
        state.watermark = watermark
        closeTimeWindows(upTo: watermark - lateness, into: &closed)
    }

    /// Emits every open time window (and no partial count window): for a bounded input
    /// that has ended, where no later element can arrive.
    public mutating func closeAll(into closed: inout [WindowResult<A.Output>]) {
        closeTimeWindows(upTo: .max, into: &closed)
    }

    private mutating func closeTimeWindows(upTo limit: Int64, into closed: inout [WindowResult<A.Output>]) {
        guard !state.timeSlots.isEmpty else { return }
        let due = state.timeSlots.keys.filter { $0.end <= limit }.sorted()
        for k in due {
            let slot = state.timeSlots.removeValue(forKey: k)!
            closed.append(WindowResult(id: k.start, partition: nil, key: k.key, start: k.start, end: k.end,
                                       count: slot.count, value: aggregation.result(of: slot.state, count: slot.count)))
        }
    }
}

// MARK: calendar arithmetic (proleptic Gregorian, UTC)

func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
func daysFromCivil(_ year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = floorDiv(y, 400)
    let yoe = y - era * 400
    let mp = (month + 9) % 12
    let doy = (153 * mp + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
}

/// The civil date of a day number since 1970-01-01.
func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
    let z = days + 719_468
    let era = floorDiv(z, 146_097)
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
}

/// `2026-03` for a time in March 2026 (UTC).
public func calendarMonthLabel(_ ms: Int64) -> String {
    let (y, m, _) = civil(fromDays: floorDiv(ms, 86_400_000))
    return "\(y)-" + (m < 10 ? "0\(m)" : "\(m)")
}

/// `2026-03-02` for a time on that day (UTC).
public func calendarDayLabel(_ ms: Int64) -> String {
    let (y, m, d) = civil(fromDays: floorDiv(ms, 86_400_000))
    return "\(y)-" + (m < 10 ? "0\(m)" : "\(m)") + "-" + (d < 10 ? "0\(d)" : "\(d)")
}
