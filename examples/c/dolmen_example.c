/* A tiny C library for dolmen's C activities (see examples/c/checksum.py).
 *
 * Build:  gcc -O2 -shared -fPIC -o libdolmen_example.so examples/c/dolmen_example.c
 */
#include <stddef.h>
#include <stdint.h>

/* Something trivial. */
long add(long a, long b) { return a + b; }

/* Adler-32 of a byte buffer; equal to Python's zlib.adler32(data). */
uint32_t adler32(const uint8_t *data, size_t len) {
    const uint32_t mod = 65521;
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < len; i++) {
        a = (a + data[i]) % mod;
        b = (b + a) % mod;
    }
    return (b << 16) | a;
}

/* Dot product of two vectors of n int64 values. */
int64_t dot(const int64_t *x, const int64_t *y, size_t n) {
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += x[i] * y[i];
    return sum;
}
