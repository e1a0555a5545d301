//! Integer trigonometry: a sine table built by `const` evaluation, and turn-based angles.
//!
//! Angles are fractions of a full turn: [`TURN_Q16`] = 65 536 units per turn (so 0 points up on
//! a clock face, see [`polar`]). [`sin_q14`]/[`cos_q14`] return values scaled by [`ONE_Q14`] and
//! interpolate linearly between the [`SIN_TABLE_LEN`] entries of [`SIN_Q14`]. The table is computed
//! at compile time with a Taylor series in `f64`; rustc evaluates `const` floating point in
//! software, so the table (and everything derived from it) is bit-identical on every target.

/// Units of angle per full turn.
pub const TURN_Q16: u32 = 1 << 16;
/// Fixed-point one for [`sin_q14`] results.
pub const ONE_Q14: i32 = 1 << 14;
/// Entries in [`SIN_Q14`] (one full turn).
pub const SIN_TABLE_LEN: usize = 1024;

/// `sin(2π i / SIN_TABLE_LEN)` scaled by [`ONE_Q14`], rounded to nearest.
pub static SIN_Q14: [i16; SIN_TABLE_LEN] = build_sin_table();

/// `sin(x)` for `x` in `[-π, π]`: Taylor series to the x^25 term (error far below 1e-9).
const fn const_sin(x: f64) -> f64 {
    let x2 = x * x;
    let mut term = x;
    let mut sum = x;
    let mut n = 1u32;
    while n < 13 {
        let k = (2 * n) as f64;
        term = -term * x2 / (k * (k + 1.0));
        sum += term;
        n += 1;
    }
    sum
}

const fn build_sin_table() -> [i16; SIN_TABLE_LEN] {
    let mut table = [0i16; SIN_TABLE_LEN];
    let mut i = 0;
    while i < SIN_TABLE_LEN {
        // Map i to [-π, π) so the series converges fast.
        let signed = if i < SIN_TABLE_LEN / 2 {
            i as f64
        } else {
            i as f64 - SIN_TABLE_LEN as f64
        };
        let x = signed * (2.0 * core::f64::consts::PI / SIN_TABLE_LEN as f64);
        let v = const_sin(x) * ONE_Q14 as f64;
        table[i] = if v >= 0.0 {
            (v + 0.5) as i16
        } else {
            (v - 0.5) as i16
        };
        i += 1;
    }
    table
}

/// `sin` of an angle in table steps (`SIN_TABLE_LEN` per turn, any integer, wraps).
#[inline(always)]
pub fn sin_step_q14(step: i32) -> i32 {
    i32::from(SIN_Q14[(step as usize) & (SIN_TABLE_LEN - 1)])
}

/// `sin(2π · turn / TURN_Q16)` scaled by [`ONE_Q14`], linearly interpolated.
pub fn sin_q14(turn: u32) -> i32 {
    const SHIFT: u32 = 16 - SIN_TABLE_LEN.trailing_zeros();
    const FRAC_MASK: u32 = (1 << SHIFT) - 1;
    let turn = turn % TURN_Q16;
    let index = (turn >> SHIFT) as i32;
    let frac = (turn & FRAC_MASK) as i32;
    let a = sin_step_q14(index);
    let b = sin_step_q14(index + 1);
    a + (((b - a) * frac) >> SHIFT)
}

/// `cos(2π · turn / TURN_Q16)` scaled by [`ONE_Q14`].
pub fn cos_q14(turn: u32) -> i32 {
    sin_q14(turn.wrapping_add(TURN_Q16 / 4))
}

/// The point at `radius` from `(cx, cy)` in clock direction `turn` (0 = up, quarter = right).
pub fn polar(cx: i32, cy: i32, radius: i32, turn: u32) -> (i32, i32) {
    let dx = (i64::from(radius) * i64::from(sin_q14(turn))) >> 14;
    let dy = (i64::from(radius) * i64::from(cos_q14(turn))) >> 14;
    (cx + dx as i32, cy - dy as i32)
}

/// `value * num / den` in 64-bit, rounded down; `den` must be non-zero.
#[inline]
pub fn mul_div(value: u64, num: u64, den: u64) -> u64 {
    ((u128::from(value) * u128::from(num)) / u128::from(den)) as u64
}

/// Reflects a position moving freely along a line back into `0..=range` (a ball between walls).
///
/// Returns the position and how many walls it has hit so far.
pub fn bounce(position: u64, range: u64) -> (u64, u64) {
    if range == 0 {
        return (0, 0);
    }
    let period = 2 * range;
    let hits = position / range;
    let m = position % period;
    let pos = if m > range { period - m } else { m };
    (pos, hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_exact_landmarks() {
        assert_eq!(SIN_Q14[0], 0);
        assert_eq!(SIN_Q14[256], 16384);
        assert_eq!(SIN_Q14[512], 0);
        assert_eq!(SIN_Q14[768], -16384);
        // sin(30°) = 0.5 → 8192; 1024 * 30 / 360 is not an integer, so check sin(45°) instead.
        assert_eq!(SIN_Q14[128], 11585); // 16384 / √2 = 11585.24
        for i in 1..SIN_TABLE_LEN / 2 {
            assert_eq!(
                SIN_Q14[i],
                -SIN_Q14[SIN_TABLE_LEN - i],
                "odd symmetry at {i}"
            );
            assert_eq!(SIN_Q14[i], SIN_Q14[SIN_TABLE_LEN / 2 - i], "mirror at {i}");
        }
    }

    #[test]
    fn interpolated_sine_and_cosine() {
        assert_eq!(sin_q14(0), 0);
        assert_eq!(sin_q14(TURN_Q16 / 4), ONE_Q14);
        assert_eq!(cos_q14(0), ONE_Q14);
        assert_eq!(cos_q14(TURN_Q16 / 2), -ONE_Q14);
        // 30° = 1/12 turn: sin = 0.5.
        assert!((sin_q14(TURN_Q16 / 12) - 8192).abs() <= 2);
        assert_eq!(sin_q14(TURN_Q16 + 5), sin_q14(5));
    }

    #[test]
    fn polar_follows_clock_directions() {
        assert_eq!(polar(100, 100, 50, 0), (100, 50));
        assert_eq!(polar(100, 100, 50, TURN_Q16 / 4), (150, 100));
        assert_eq!(polar(100, 100, 50, TURN_Q16 / 2), (100, 150));
        assert_eq!(polar(100, 100, 50, 3 * TURN_Q16 / 4), (50, 100));
    }

    #[test]
    fn bounce_reflects() {
        assert_eq!(bounce(0, 10), (0, 0));
        assert_eq!(bounce(7, 10), (7, 0));
        assert_eq!(bounce(10, 10), (10, 1));
        assert_eq!(bounce(13, 10), (7, 1));
        assert_eq!(bounce(20, 10), (0, 2));
        assert_eq!(bounce(25, 10), (5, 2));
        assert_eq!(bounce(5, 0), (0, 0));
        assert_eq!(mul_div(u64::MAX, 3, 3), u64::MAX);
    }
}
