//! sysbench 1.0.20's random numbers, reproduced so that the built-in workloads pick the
//! rows sysbench would: xoroshiro128+ per thread (`sb_rand_uniform_uint64`), doubles in
//! [0, 1) from its top 52 bits (`sb_rand_uniform_double`), and the distributions of
//! `--rand-type`: `uniform`, `gaussian`, `special` (the default) and `pareto`, with
//! `--rand-spec-iter` (12), `--rand-spec-pct` (1) and `--rand-spec-res` (75) and
//! `--rand-pareto-h` (0.2) as sysbench defines them (`src/sb_rand.c`). `sb_rand_str`
//! fills `#` with digits and `@` with letters.
//!
//! The arithmetic follows the C code step by step (doubles, truncation to `u32`), so the
//! same state gives the same numbers. Seeds differ: sysbench seeds from libc `random()`,
//! this from the clock and the connection number (or `--rand-seed`).

/// Which distribution `default` draws from (`--rand-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandType {
    /// Uniform over [a, b].
    Uniform,
    /// The mean of `iter` uniform draws.
    Gaussian,
    /// sysbench's default: `res`% of draws uniform over the middle `pct`% of the range,
    /// the rest gaussian over the whole range.
    Special,
    /// Pareto with parameter `h`.
    Pareto,
}

impl RandType {
    /// Parses a `--rand-type` name.
    pub fn from_name(name: &str) -> Result<RandType, String> {
        Ok(match name {
            "uniform" => RandType::Uniform,
            "gaussian" => RandType::Gaussian,
            "special" => RandType::Special,
            "pareto" => RandType::Pareto,
            other => {
                return Err(format!(
                    "unknown --rand-type '{other}' (uniform, gaussian, special or pareto)"
                ))
            }
        })
    }
}

/// The distribution parameters (sysbench's `--rand-*` options).
#[derive(Clone, Copy, Debug)]
pub struct RandOptions {
    /// `--rand-type`.
    pub kind: RandType,
    /// `--rand-spec-iter`.
    pub spec_iter: u32,
    /// `--rand-spec-pct`.
    pub spec_pct: u32,
    /// `--rand-spec-res`.
    pub spec_res: u32,
    /// `--rand-pareto-h`.
    pub pareto_h: f64,
}

impl Default for RandOptions {
    fn default() -> Self {
        RandOptions {
            kind: RandType::Special,
            spec_iter: 12,
            spec_pct: 1,
            spec_res: 75,
            pareto_h: 0.2,
        }
    }
}

/// One generator (sysbench has one per thread; here one per connection, so that a
/// connection's sequence does not depend on how tasks interleave).
#[derive(Clone, Debug)]
pub struct SbRand {
    state: [u64; 2],
    kind: RandType,
    iter: u32,
    iter_mult: f64,
    pct_mult: f64,
    pct_2_mult: f64,
    res_mult: f64,
    pareto_power: f64,
}

impl SbRand {
    /// A generator seeded with `seed` (through splitmix64, so that nearby seeds give
    /// unrelated states; xoroshiro's state must not be all zero).
    pub fn new(options: &RandOptions, seed: u64) -> SbRand {
        let mut s = seed;
        let state = [splitmix64(&mut s), splitmix64(&mut s) | 1];
        SbRand::with_state(options, state)
    }

    /// A generator with this exact xoroshiro128+ state (for comparing with sysbench).
    pub fn with_state(options: &RandOptions, state: [u64; 2]) -> SbRand {
        let iter = options.spec_iter.max(1);
        SbRand {
            state,
            kind: options.kind,
            iter,
            iter_mult: 1.0 / f64::from(iter),
            pct_mult: f64::from(options.spec_pct) / 100.0,
            pct_2_mult: f64::from(options.spec_pct) / 200.0,
            res_mult: 100.0 / (100.0 - f64::from(options.spec_res)),
            pareto_power: options.pareto_h.ln() / (1.0 - options.pareto_h).ln(),
        }
    }

    /// `xoroshiro_next`.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s0 = self.state[0];
        let mut s1 = self.state[1];
        let result = s0.wrapping_add(s1);
        s1 ^= s0;
        self.state[0] = s0.rotate_left(55) ^ s1 ^ (s1 << 14);
        self.state[1] = s1.rotate_left(36);
        result
    }

    /// `sb_rand_uniform_double`: [0, 1).
    #[inline]
    pub fn uniform_double(&mut self) -> f64 {
        let x = self.next_u64();
        f64::from_bits(0x3FF << 52 | x >> 12) - 1.0
    }

    /// `sb_rand_default`: the `--rand-type` distribution over [a, b].
    #[inline]
    pub fn default(&mut self, a: u32, b: u32) -> u32 {
        match self.kind {
            RandType::Uniform => self.uniform(a, b),
            RandType::Gaussian => self.gaussian(a, b),
            RandType::Special => self.special(a, b),
            RandType::Pareto => self.pareto(a, b),
        }
    }

    /// `sb_rand_uniform`.
    #[inline]
    pub fn uniform(&mut self, a: u32, b: u32) -> u32 {
        (f64::from(a) + self.uniform_double() * f64::from(b.wrapping_sub(a).wrapping_add(1))) as u32
    }

    /// `sb_rand_gaussian`.
    pub fn gaussian(&mut self, a: u32, b: u32) -> u32 {
        let t = f64::from(b.wrapping_sub(a).wrapping_add(1));
        let mut sum = 0.0;
        for _ in 0..self.iter {
            sum += self.uniform_double() * t;
        }
        a.wrapping_add((sum * self.iter_mult) as u32)
    }

    /// `sb_rand_special`.
    #[inline]
    pub fn special(&mut self, a: u32, b: u32) -> u32 {
        let t = f64::from(b.wrapping_sub(a));
        let range_size = t * self.res_mult;
        let rnd = self.uniform_double();
        let res = rnd * range_size;
        if res < t {
            let mut sum = 0.0;
            for _ in 0..self.iter {
                sum += self.uniform_double();
            }
            // `return a + sum * t * rand_iter_mult;`: a double converted to uint32_t.
            return (f64::from(a) + sum * t * self.iter_mult) as u32;
        }
        let d = t * self.pct_mult;
        let mut res = rnd * (d + 1.0);
        res += t / 2.0 - t * self.pct_2_mult;
        a.wrapping_add(res as u32)
    }

    /// `sb_rand_pareto`.
    pub fn pareto(&mut self, a: u32, b: u32) -> u32 {
        let span = f64::from(b.wrapping_sub(a).wrapping_add(1));
        a.wrapping_add((span * self.uniform_double().powf(self.pareto_power)) as u32)
    }

    /// `sb_rand_str`: `#` becomes a digit, `@` a lower-case letter, anything else stays;
    /// written over `out`, which must be as long as `template`.
    pub fn fill_str(&mut self, template: &[u8], out: &mut [u8]) {
        for (o, &c) in out.iter_mut().zip(template) {
            *o = match c {
                b'#' => self.uniform(u32::from(b'0'), u32::from(b'9')) as u8,
                b'@' => self.uniform(u32::from(b'a'), u32::from(b'z')) as u8,
                other => other,
            };
        }
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference xoroshiro128+ (Vigna's `next`) on a known state: the first outputs.
    #[test]
    fn xoroshiro_matches_the_reference() {
        let mut r = SbRand::with_state(&RandOptions::default(), [1, 2]);
        assert_eq!(r.next_u64(), 3);
        // s1 ^= s0 -> 3; s0' = rotl(1,55) ^ 3 ^ (3 << 14); s1' = rotl(3, 36)
        let s0 = 1u64.rotate_left(55) ^ 3 ^ (3 << 14);
        let s1 = 3u64.rotate_left(36);
        assert_eq!(r.next_u64(), s0.wrapping_add(s1));
    }

    #[test]
    fn doubles_are_in_the_unit_interval() {
        let mut r = SbRand::new(&RandOptions::default(), 7);
        for _ in 0..10_000 {
            let d = r.uniform_double();
            assert!((0.0..1.0).contains(&d), "{d}");
        }
    }

    /// sysbench's special distribution over 1..10000 with the defaults: 75 % of draws
    /// land in the middle 1 % (4999.5 ± 50, i.e. 4950..=5050), the rest spread as a
    /// gaussian over the whole range; every draw is within [a, b].
    #[test]
    fn special_puts_three_quarters_in_the_middle_percent() {
        let mut r = SbRand::new(&RandOptions::default(), 42);
        let n = 200_000;
        let mut middle = 0;
        for _ in 0..n {
            let v = r.default(1, 10_000);
            assert!((1..=10_000).contains(&v), "{v}");
            if (4950..=5051).contains(&v) {
                middle += 1;
            }
        }
        let share = f64::from(middle) / f64::from(n);
        // 75 % uniform in the hot 1 %, plus the gaussian's own mass there (~3 % of 25 %).
        assert!((0.74..0.79).contains(&share), "{share}");
    }

    #[test]
    fn uniform_covers_the_range_and_strings_follow_the_template() {
        let opts = RandOptions {
            kind: RandType::Uniform,
            ..Default::default()
        };
        let mut r = SbRand::new(&opts, 1);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            seen[(r.default(1, 10) - 1) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        let mut out = [0u8; 7];
        r.fill_str(b"##-@@x#", &mut out);
        assert!(out[0].is_ascii_digit() && out[1].is_ascii_digit());
        assert_eq!(out[2], b'-');
        assert!(out[3].is_ascii_lowercase() && out[4].is_ascii_lowercase());
        assert_eq!(out[5], b'x');
        assert!(out[6].is_ascii_digit());
        assert!(RandType::from_name("zipf").is_err());
    }
}
