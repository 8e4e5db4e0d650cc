/// Folds the elements of one window into a result.
///
/// The state is `Codable` because open windows are part of a pipeline's checkpoint: a
/// restarted pipeline continues a half-full window instead of losing or re-reading its
/// elements. Keep it small; it is written with every checkpoint.
///
/// ```swift
/// struct MaxGust: Aggregation {
///     func initialState() -> Double { -.infinity }
///     func add(_ reading: Reading, to state: inout Double) { state = max(state, reading.gust) }
///     func result(of state: Double, count: Int) -> Double { state }
/// }
/// ```
public protocol Aggregation<Input, Output>: Sendable {
    associatedtype Input
    associatedtype State: Codable & Sendable
    associatedtype Output
    /// The state of an empty window.
    func initialState() -> State
    /// Adds one element, in the order the source delivered it (offset order per partition).
    func add(_ input: Input, to state: inout State)
    /// The window's result; `count` is the number of elements added.
    func result(of state: State, count: Int) -> Output
}

/// The number of elements.
public struct Count<Input>: Aggregation {
    public init() {}
    public func initialState() -> Int { 0 }
    public func add(_ input: Input, to state: inout Int) { state += 1 }
    public func result(of state: Int, count: Int) -> Int { state }
}

/// The sum of a value of each element, added left to right in arrival order (as
/// Python 3.11's `sum()`; no compensation, so results match it bit for bit).
public struct Sum<Input>: Aggregation {
    let value: @Sendable (Input) -> Double
    public init(_ value: @escaping @Sendable (Input) -> Double) { self.value = value }
    public func initialState() -> Double { 0 }
    public func add(_ input: Input, to state: inout Double) { state += value(input) }
    public func result(of state: Double, count: Int) -> Double { state }
}

/// The mean of a value of each element: the left-to-right sum divided by the count
/// (`sum(xs) / len(xs)` in Python). NaN for an empty window.
public struct Mean<Input>: Aggregation {
    let value: @Sendable (Input) -> Double
    public init(_ value: @escaping @Sendable (Input) -> Double) { self.value = value }
    public func initialState() -> Double { 0 }
    public func add(_ input: Input, to state: inout Double) { state += value(input) }
    public func result(of state: Double, count: Int) -> Double { state / Double(count) }
}

/// The smallest value of an element in the window; nil for an empty window.
public struct Min<Input>: Aggregation {
    let value: @Sendable (Input) -> Double
    public init(_ value: @escaping @Sendable (Input) -> Double) { self.value = value }
    public func initialState() -> Double? { nil }
    public func add(_ input: Input, to state: inout Double?) {
        let v = value(input)
        if state.map({ v < $0 }) ?? true { state = v }
    }
    public func result(of state: Double?, count: Int) -> Double? { state }
}

/// The largest value of an element in the window; nil for an empty window.
public struct Max<Input>: Aggregation {
    let value: @Sendable (Input) -> Double
    public init(_ value: @escaping @Sendable (Input) -> Double) { self.value = value }
    public func initialState() -> Double? { nil }
    public func add(_ input: Input, to state: inout Double?) {
        let v = value(input)
        if state.map({ v > $0 }) ?? true { state = v }
    }
    public func result(of state: Double?, count: Int) -> Double? { state }
}

/// Two aggregations over the same elements, side by side (`Both(Mean(...), Max(...))`).
public struct Both<A: Aggregation, B: Aggregation>: Aggregation where A.Input == B.Input {
    public struct State: Codable, Sendable {
        var first: A.State
        var second: B.State
    }
    let a: A
    let b: B
    public init(_ a: A, _ b: B) {
        self.a = a
        self.b = b
    }
    public func initialState() -> State { State(first: a.initialState(), second: b.initialState()) }
    public func add(_ input: A.Input, to state: inout State) {
        a.add(input, to: &state.first)
        b.add(input, to: &state.second)
    }
    public func result(of state: State, count: Int) -> (A.Output, B.Output) {
        (a.result(of: state.first, count: count), b.result(of: state.second, count: count))
    }
}
