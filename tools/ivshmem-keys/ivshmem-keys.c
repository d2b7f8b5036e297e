// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem-keys: pairwise keys for AF_IVSHMEM connection security.
 *
 *   ivshmem-keys master                       a new master secret (hex)
 *   ivshmem-keys derive MASTER REGION SELF [PEERS]
 *       host: the row of guest SELF: "PEER KEY" for peers 0..PEERS-1
 *       (default 64), KEY = HMAC-SHA256(master, "af_ivshmem pairwise
 *       key v1" NUL REGION NUL le16(min(SELF, PEER)) le16(max(...))).
 *       MASTER is a file holding the secret in hex; REGION the region's
 *       name, the same for every guest on it.
 *   ivshmem-keys load [-r INDEX] [FILE]       guest: load a row (stdin)
 *   ivshmem-keys set [-r INDEX] PEER KEY      guest: one key
 *   ivshmem-keys clear [-r INDEX] [PEER]      guest: delete one or all
 *
 * A guest is given only its own row: it can prove its own id to each
 * peer, and no other.  Loading needs CAP_NET_ADMIN (IOCTL_IVSHMEM_SET_KEY).
 * SHA-256 and HMAC are implemented below (host side, no dependencies).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

#include "../lib/ivshmem.h"

#define LABEL "af_ivshmem pairwise key v1"

static int usage(void)
{
	fprintf(stderr,
		"usage: ivshmem-keys master\n"
		"       ivshmem-keys derive MASTER REGION SELF [PEERS]\n"
		"       ivshmem-keys load [-r INDEX] [FILE]\n"
		"       ivshmem-keys set [-r INDEX] PEER KEY\n"
		"       ivshmem-keys clear [-r INDEX] [PEER]\n");
	return 2;
}

static int die(const char *what)
{
	fprintf(stderr, "ivshmem-keys: %s: %s\n", what, strerror(errno));
	return 1;
}

static void hex_out(const unsigned char *p, size_t n)
{
	while (n--)
		printf("%02x", *p++);
}

/* Parses exactly @n bytes of hex; 0 on success. */
static int hex_in(const char *s, unsigned char *out, size_t n)
{
	size_t i;

	if (strlen(s) != 2 * n)
		return -1;
	for (i = 0; i < n; i++)
		if (sscanf(s + 2 * i, "%2hhx", &out[i]) != 1)
			return -1;
	return 0;
}

static int cmd_master(void)
{
	unsigned char k[32];

	if (getrandom(k, sizeof(k), 0) != sizeof(k))
		return die("getrandom");
	hex_out(k, sizeof(k));
	printf("\n");
	return 0;
}

/* SHA-256 (FIPS 180-4) and HMAC (RFC 2104), for the host side only:
 * written here so that deriving keys needs no library and no AF_ALG.
 */
static const uint32_t sha_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(uint32_t h[8], const unsigned char *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, hh, t1, t2;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | p[4 * i + 1] << 16 |
		       p[4 * i + 2] << 8 | p[4 * i + 3];
	for (i = 16; i < 64; i++)
		w[i] = w[i - 16] + w[i - 7] +
		       (ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ w[i - 15] >> 3) +
		       (ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ w[i - 2] >> 10);
	a = h[0]; b = h[1]; c = h[2]; d = h[3];
	e = h[4]; f = h[5]; g = h[6]; hh = h[7];
	for (i = 0; i < 64; i++) {
		t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) +
		     ((e & f) ^ (~e & g)) + sha_k[i] + w[i];
		t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) +
		     ((a & b) ^ (a & c) ^ (b & c));
		hh = g; g = f; f = e; e = d + t1;
		d = c; c = b; b = a; a = t1 + t2;
	}
	h[0] += a; h[1] += b; h[2] += c; h[3] += d;
	h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

/* SHA-256 of @a (@alen bytes) followed by @b (@blen bytes). */
static void sha256(const unsigned char *a, size_t alen,
		   const unsigned char *b, size_t blen, unsigned char out[32])
{
	uint32_t h[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};
	unsigned char buf[64];
	uint64_t bits = (uint64_t)(alen + blen) * 8;
	size_t fill = 0, i;
	int k;

	for (i = 0; i < alen + blen; i++) {
		buf[fill++] = i < alen ? a[i] : b[i - alen];
		if (fill == 64) {
			sha_block(h, buf);
			fill = 0;
		}
	}
	buf[fill++] = 0x80;
	if (fill > 56) {
		memset(buf + fill, 0, 64 - fill);
		sha_block(h, buf);
		fill = 0;
	}
	memset(buf + fill, 0, 56 - fill);
	for (k = 0; k < 8; k++)
		buf[56 + k] = bits >> (56 - 8 * k);
	sha_block(h, buf);
	for (k = 0; k < 32; k++)
		out[k] = h[k / 4] >> (24 - 8 * (k % 4));
}

/* HMAC-SHA256 with a 32-byte key. */
static void hmac_sha256(const unsigned char key[32], const unsigned char *msg,
			size_t len, unsigned char out[32])
{
	unsigned char pad[64], inner[32];
	int i;

	for (i = 0; i < 64; i++)
		pad[i] = (i < 32 ? key[i] : 0) ^ 0x36;
	sha256(pad, 64, msg, len, inner);
	for (i = 0; i < 64; i++)
		pad[i] ^= 0x36 ^ 0x5c;
	sha256(pad, 64, inner, 32, out);
}

static int cmd_derive(int argc, char **argv)
{
	unsigned char master[32], msg[512], key[32];
	char line[256];
	unsigned long self, peers = 64, p, lo, hi;
	size_t rlen, base;
	FILE *f;

	if (argc < 4 || argc > 5)
		return usage();
	f = fopen(argv[1], "r");
	if (!f)
		return die(argv[1]);
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return die("master secret: empty");
	}
	fclose(f);
	line[strcspn(line, "\r\n")] = 0;
	if (hex_in(line, master, sizeof(master))) {
		fprintf(stderr, "ivshmem-keys: master secret: want 64 hex digits\n");
		return 1;
	}
	self = strtoul(argv[3], NULL, 0);
	if (argc == 5)
		peers = strtoul(argv[4], NULL, 0);
	rlen = strlen(argv[2]);
	if (self >= 64 || peers > 64 || rlen > 256)
		return usage();
	base = sizeof(LABEL) + rlen + 1;
	memcpy(msg, LABEL, sizeof(LABEL));
	memcpy(msg + sizeof(LABEL), argv[2], rlen + 1);
	for (p = 0; p < peers; p++) {
		lo = p < self ? p : self;
		hi = p < self ? self : p;
		msg[base] = lo;
		msg[base + 1] = 0;
		msg[base + 2] = hi;
		msg[base + 3] = 0;
		hmac_sha256(master, msg, base + 4, key);
		printf("%lu ", p);
		hex_out(key, sizeof(key));
		printf("\n");
	}
	memset(master, 0, sizeof(master));
	return 0;
}

static int set_key(int fd, unsigned int region, unsigned int peer,
		   const unsigned char *key, int flags)
{
	struct ivshmem_key k = {
		.region = region,
		.flags = flags,
		.peer = peer,
	};

	if (key)
		memcpy(k.key, key, sizeof(k.key));
	return ioctl(fd, IOCTL_IVSHMEM_SET_KEY, &k);
}

int main(int argc, char **argv)
{
	unsigned char key[IVSHMEM_KEY_LEN];
	unsigned int region = IVSHMEM_REGION_ANY;
	const char *cmd;
	char hex[128];
	unsigned int peer;
	int fd, c, n = 0;
	FILE *f = stdin;

	if (argc < 2)
		return usage();
	cmd = argv[1];
	if (!strcmp(cmd, "master"))
		return cmd_master();
	if (!strcmp(cmd, "derive"))
		return cmd_derive(argc - 1, argv + 1);
	optind = 2;
	while ((c = getopt(argc, argv, "r:")) != -1) {
		if (c != 'r')
			return usage();
		region = strtoul(optarg, NULL, 0);
	}
	c = ivshmem_family();
	fd = c < 0 ? -1 : socket(c, SOCK_STREAM, 0);
	if (fd < 0)
		return die("socket");
	if (!strcmp(cmd, "load")) {
		if (optind < argc) {
			f = fopen(argv[optind], "r");
			if (!f)
				return die(argv[optind]);
		}
		while (fscanf(f, "%u %127s", &peer, hex) == 2) {
			if (hex_in(hex, key, sizeof(key))) {
				fprintf(stderr, "ivshmem-keys: bad key for peer %u\n", peer);
				return 1;
			}
			if (set_key(fd, region, peer, key, 0))
				return die("IOCTL_IVSHMEM_SET_KEY");
			n++;
		}
		memset(key, 0, sizeof(key));
		fprintf(stderr, "ivshmem-keys: %d keys loaded\n", n);
		return 0;
	}
	if (!strcmp(cmd, "set") && argc - optind == 2) {
		if (hex_in(argv[optind + 1], key, sizeof(key)))
			return usage();
		if (set_key(fd, region, strtoul(argv[optind], NULL, 0), key, 0))
			return die("IOCTL_IVSHMEM_SET_KEY");
		return 0;
	}
	if (!strcmp(cmd, "clear") && argc - optind <= 1) {
		peer = optind < argc ? strtoul(argv[optind], NULL, 0) :
		       IVSHMEM_PEER_ANY;
		if (set_key(fd, region, peer, NULL, IVSHMEM_KEY_F_DELETE))
			return die("IOCTL_IVSHMEM_SET_KEY");
		return 0;
	}
	return usage();
}
