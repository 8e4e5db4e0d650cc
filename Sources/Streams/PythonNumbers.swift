#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Python's number semantics, so a Swift pipeline writes the same bytes as the
// tutorial's Python consumers.

/// Python's `round(x, ndigits)`: the Double nearest to `x` rounded to `ndigits` decimals,
/// computed on the exact binary value of `x` with ties to even.
///
/// Not `(x * 10).rounded() / 10`: `2.675` is really 2.67499999…, so Python gives `2.67`,
/// and `0.25` is exact, so it gives `0.2`. C's `printf("%.*f")` rounds the exact value
/// correctly (glibc and Apple's libc do; ties to even in the default rounding mode) and
/// `strtod` reads the decimal back to the nearest Double, which is what CPython's
/// `round` computes. Infinities and NaN come back unchanged, as in Python.
public func pythonRound(_ x: Double, ndigits: Int) -> Double {
    guard x.isFinite else { return x }
    if ndigits == 1, Swift.abs(x) < 1e14 { return pythonRoundOneDigit(x) }
    return pythonRoundByPrintf(x, ndigits: ndigits)
}

/// `round(x, 1)` without formatting: 10x is split exactly into `hi + lo` (an FMA gives
/// the product's rounding error), the tie test compares exactly, and `n / 10` of the
/// chosen integer n is one correctly rounded division, so it is the Double nearest to the
/// decimal n/10, which is what reading that decimal back gives. Needs |x| < 1e14 so
/// that 10x and its floor are exact integers-or-fractions below 2^53.
@inline(__always)
func pythonRoundOneDigit(_ x: Double) -> Double {
    // Ties to even is symmetric, so work on |x|: for hi >= 0 its floor f is 0 or within a
    // factor of 2 of hi, which makes hi - f exact (Sterbenz).
    let m = Swift.abs(x)
    let hi = m * 10
    let lo = fmaError(m, hi)
    let f = hi.rounded(.down)
    let a = hi - f
    // Compare a + lo with 1/2 exactly: a - 0.5 is exact when a >= 0.25, and when a < 0.25
    // the sum is far below 1/2 since |lo| is at most half an ulp of hi.
    var n = f
    if a >= 0.25 {
        let d = a - 0.5
        if d > -lo {
            n = f + 1
        } else if d == -lo {
            n = f.truncatingRemainder(dividingBy: 2) == 0 ? f : f + 1
        }
    }
    let result = n / 10
    return x.sign == .minus ? -result : result
}

/// The exact error of `hi = x * 10`: `x * 10 - hi`, computed by one fused multiply-add.
@inline(__always)
private func fmaError(_ x: Double, _ hi: Double) -> Double {
    (-hi).addingProduct(x, 10)
}

/// `round(x, ndigits)` through C's correctly rounded `printf("%.*f")` and `strtod`.
func pythonRoundByPrintf(_ x: Double, ndigits: Int) -> Double {
    precondition(ndigits >= 0 && ndigits <= 300, "ndigits out of range")
    // A finite Double has at most 309 integer digits; 330 + ndigits always fits.
    let capacity = 330 + ndigits
    return withUnsafeTemporaryAllocation(of: CChar.self, capacity: capacity) { buffer in
        let base = buffer.baseAddress!
        let written = withVaList([Int32(ndigits), x]) { vsnprintf(base, capacity, "%.*f", $0) }
        precondition(written > 0 && Int(written) < capacity, "snprintf overflow")
        let value = strtod(base, nil)
        // Python keeps the sign of zero: round(-0.04, 1) is -0.0.
        return value == 0 ? (x.sign == .minus ? -0.0 : 0.0) : value
    }
}

/// Python's `round(x)` with no digits: the nearest integer, ties to even (`round(2.5)`
/// is 2). Traps on NaN and infinities, where Python raises.
public func pythonRound(_ x: Double) -> Int {
    Int(x.rounded(.toNearestOrEven))
}

/// Python's `repr(x)` (and `str(x)`) of a float: the shortest digits that read back as
/// `x`, in fixed notation when the decimal exponent is in -4 ..< 16 (`20.0`,
/// `0.0001`, `89.60000000000001`), otherwise scientific with at least two exponent
/// digits (`1e+16`, `1.5e-05`); `inf`, `-inf`, `nan`.
///
/// Swift's `description` already yields the shortest round-trip digits (closest to `x`
/// among the shortest, as Python picks); only the layout differs, so the digits are
/// taken from it and laid out by Python's rules.
public func pythonRepr(_ x: Double) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x < 0 ? "-inf" : "inf" }
    let negative = x.sign == .minus
    if x == 0 { return negative ? "-0.0" : "0.0" }
    let magnitude = Swift.abs(x)
    if magnitude >= 1e-4 && magnitude < 9.0e15 {
        // Swift prints this range in fixed notation with the same shortest digits and
        // the same ".0" for integers as Python's repr (checked against python3 in tests).
        let text = x.description
        if !text.utf8.contains(UInt8(ascii: "e")) { return text }
    }
    let (shortest, pointPosition) = shortestDigits(of: Swift.abs(x))
    var digits = shortest
    // x = 0.d1d2d3... * 10^pointPosition; Python's exponent is pointPosition - 1.
    let exponent = pointPosition - 1
    var out = negative ? "-" : ""
    if exponent >= -4 && exponent < 16 {
        if pointPosition <= 0 {
            out += "0." + String(repeating: "0", count: -pointPosition) + digits
        } else if pointPosition >= digits.count {
            out += digits + String(repeating: "0", count: pointPosition - digits.count) + ".0"
        } else {
            let split = digits.index(digits.startIndex, offsetBy: pointPosition)
            out += digits[..<split] + "." + digits[split...]
        }
    } else {
        let first = digits.removeFirst()
        out.append(first)
        if !digits.isEmpty { out += "." + digits }
        out += exponent < 0 ? "e-" : "e+"
        let e = Swift.abs(exponent)
        out += e < 10 ? "0\(e)" : "\(e)"
    }
    return out
}

/// The shortest round-trip decimal digits of a positive finite `x` (no leading or
/// trailing zeros) and the position of the decimal point relative to them.
private func shortestDigits(of x: Double) -> (digits: String, pointPosition: Int) {
    let text = x.description  // e.g. "123.45", "1e-05", "1.2345e+20", "5e-324"
    var mantissa = Substring(text)
    var exponent = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        mantissa = text[..<e]
        exponent = Int(text[text.index(after: e)...])!
    }
    var integerPart = mantissa
    var fractionPart: Substring = ""
    if let dot = mantissa.firstIndex(of: ".") {
        integerPart = mantissa[..<dot]
        fractionPart = mantissa[mantissa.index(after: dot)...]
    }
    var digits = Array(integerPart + fractionPart)
    var point = integerPart.count + exponent
    while let first = digits.first, first == "0" {
        digits.removeFirst()
        point -= 1
    }
    while let last = digits.last, last == "0" { digits.removeLast() }
    return (String(digits), point)
}
