//! CPU kernels for dolmen's native fast path.
//!
//! Everything exported here is a plain `extern "C"` function: maturin's cffi bindings run
//! cbindgen over this file to write the C declarations, and cffi releases the GIL for the
//! duration of each call, so Python threads running these kernels use every core.
//! Input validation lives in `dolmen/native.py`; these functions trust their arguments.

use std::hint::black_box;

/// Naive doubly recursive Fibonacci, exactly the benchmark's definition.
///
/// The work is the point: benchmarks compare this against the same recursion in Python and
/// against other runtimes, so no memoization or closed form. `black_box` on the input keeps
/// the optimizer from evaluating constant calls at compile time.
/// Results above n = 93 overflow u64 (the Python wrapper rejects them).
#[no_mangle]
pub extern "C" fn fibo(n: u8) -> u64 {
    fibo_rec(black_box(n))
}

fn fibo_rec(n: u8) -> u64 {
    if n < 2 {
        n as u64
    } else {
        fibo_rec(n - 1).wrapping_add(fibo_rec(n - 2))
    }
}

/// Reflected IEEE CRC-32 table, built at compile time so the hot loop is one lookup per byte.
const CRC32_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// IEEE CRC-32 of a byte slice; equal to Python's `zlib.crc32(data)`.
pub fn crc32_bytes(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc = CRC32_TABLE[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// IEEE CRC-32 of `len` bytes at `ptr`.
///
/// # Safety
/// `ptr` must point to `len` readable bytes, or `len` must be 0 (then `ptr` may be null).
#[no_mangle]
pub unsafe extern "C" fn crc32(ptr: *const u8, len: usize) -> u32 {
    if len == 0 {
        // A zero-length cffi buffer may hand us null, which from_raw_parts forbids.
        return crc32_bytes(&[]);
    }
    crc32_bytes(std::slice::from_raw_parts(ptr, len))
}

/// Number of primes strictly below `limit`, by a sieve of Eratosthenes over odd numbers.
///
/// Memory is limit / 2 bytes; the Python wrapper caps `limit` so this stays bounded.
#[no_mangle]
pub extern "C" fn count_primes(limit: u64) -> u64 {
    if limit <= 2 {
        return 0;
    }
    // Index i stands for the odd number 2i + 1, so limit / 2 indexes cover exactly the odd
    // numbers below limit; index 0 (the number 1) is not prime, and 2 is counted apart.
    let size = (limit / 2) as usize;
    let mut composite = vec![false; size];
    composite[0] = true;
    let mut i = 1usize;
    loop {
        let p = 2 * i + 1;
        let square = p * p;
        if square as u64 >= limit {
            break;
        }
        if !composite[i] {
            // Step by p in index space is a step of 2p in numbers: even multiples are skipped.
            let mut j = square / 2;
            while j < size {
                composite[j] = true;
                j += p;
            }
        }
        i += 1;
    }
    1 + composite.iter().filter(|&&c| !c).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fibo_known_values() {
        let expected = [0u64, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55];
        for (n, &want) in expected.iter().enumerate() {
            assert_eq!(fibo(n as u8), want, "fibo({n})");
        }
        assert_eq!(fibo(30), 832_040);
        assert_eq!(fibo(38), 39_088_169);
    }

    #[test]
    fn crc32_known_vectors() {
        assert_eq!(crc32_bytes(b""), 0);
        assert_eq!(crc32_bytes(b"a"), 0xE8B7_BE43);
        assert_eq!(crc32_bytes(b"123456789"), 0xCBF4_3926);
        assert_eq!(
            crc32_bytes(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
        let data = b"123456789";
        assert_eq!(unsafe { crc32(data.as_ptr(), data.len()) }, 0xCBF4_3926);
        assert_eq!(unsafe { crc32(std::ptr::null(), 0) }, 0);
    }

    #[test]
    fn count_primes_known_values() {
        let cases = [
            (0u64, 0u64),
            (1, 0),
            (2, 0),
            (3, 1),
            (4, 2),
            (5, 2),
            (6, 3),
            (10, 4),
            (11, 4),
            (12, 5),
            (100, 25),
            (101, 25),
            (102, 26),
            (1_000_000, 78_498),
        ];
        for (limit, want) in cases {
            assert_eq!(count_primes(limit), want, "count_primes({limit})");
        }
    }

    #[test]
    fn count_primes_matches_trial_division() {
        let is_prime = |n: u64| {
            n >= 2
                && (2..)
                    .take_while(|d| d * d <= n)
                    .all(|d| !n.is_multiple_of(d))
        };
        let mut count = 0;
        for limit in 0..2_000u64 {
            assert_eq!(count_primes(limit), count, "count_primes({limit})");
            if is_prime(limit) {
                count += 1;
            }
        }
    }
}
