/* SPDX-License-Identifier: GPL-2.0 */
/* AF_IVSHMEM connection security (secure.c): keys, handshake MACs, the
 * record AEAD.  See "Encryption and key exchange" in
 * Documentation/networking/af_ivshmem.rst.
 */
#ifndef _NET_IVSHMEM_SECURE_H
#define _NET_IVSHMEM_SECURE_H

#include <linux/types.h>

#include "ivshmem_abi.h"

#define IVSHM_SEC_AEAD		"gcm(aes)"	/* AES-256-GCM */
#define IVSHM_SEC_IV		12
#define IVSHM_SEC_TAG		16
#define IVSHM_SEC_NONCE		16
#define IVSHM_SEC_MAC		32	/* HMAC-SHA256 */
/* Each ring of a protected connection starts with 48 handshake bytes:
 * the connector's nonce then its MAC, or the acceptor's nonce and MAC.
 */
#define IVSHM_SEC_HS_BYTES	(IVSHM_SEC_NONCE + IVSHM_SEC_MAC)
/* A record: header, ciphertext, tag; at most this many bytes in all.
 * SOCK_SEQPACKET messages use the same records, the header's flags
 * (authenticated) marking the end of a message or an abandoned one.
 */
#define IVSHM_SEC_REC_MAX	16384
#define IVSHM_SEC_OVERHEAD	(sizeof(struct ivshm_record) + IVSHM_SEC_TAG)
#define IVSHM_SEC_PAYLOAD_MAX	(IVSHM_SEC_REC_MAX - IVSHM_SEC_OVERHEAD)

/**
 * struct ivshm_sec_transcript - what both MACs and the session keys cover
 * @label: "af_ivshmem sec1" and a NUL
 * @connector: the connector's peer id, as its request claims
 * @acceptor: the acceptor's peer id
 * @type: the socket type
 * @reserved: zero
 * @connector_port: the connector's port
 * @acceptor_port: the port it connects to
 * @req_index: the request channel's index
 * @req_gen: and generation
 * @reply_index: the reply channel's index
 * @reply_gen: and generation
 * @nonce_c: the connector's nonce
 * @nonce_a: the acceptor's nonce
 *
 * Never stored in the region: each side builds it from what it knows.
 */
struct ivshm_sec_transcript {
	u8 label[16];
	__le16 connector;
	__le16 acceptor;
	__le16 type;
	__le16 reserved;
	__le32 connector_port;
	__le32 acceptor_port;
	__le32 req_index;
	__le32 req_gen;
	__le32 reply_index;
	__le32 reply_gen;
	u8 nonce_c[IVSHM_SEC_NONCE];
	u8 nonce_a[IVSHM_SEC_NONCE];
};

#define IVSHM_SEC_LABEL		"af_ivshmem sec1"

struct crypto_aead;
struct aead_request;

/**
 * struct ivshm_sec - the session of a protected connection
 * @tx_tfm: AEAD keyed for what we send
 * @rx_tfm: AEAD keyed for what we receive
 * @tx_req: request for @tx_tfm
 * @rx_req: request for @rx_tfm
 * @tx_seq: sequence number (nonce) of the next record we send
 * @rx_seq: sequence number of the next record we expect
 * @tx_buf: a record being sealed
 * @rx_buf: the last record opened: its plaintext is served from here
 * @rx_off: offset of the unread plaintext in @rx_buf
 * @rx_len: unread plaintext bytes in @rx_buf
 * @rx_flags: SOCK_SEQPACKET: the IVSHM_REC_* flags of the record in @rx_buf
 * @rx_held: SOCK_SEQPACKET: @rx_buf holds an opened record not yet
 *	delivered (a peek leaves it there; it may have no payload)
 * @expect_mac: acceptor, before the connector's MAC came: that MAC
 */
struct ivshm_sec {
	struct crypto_aead *tx_tfm;
	struct crypto_aead *rx_tfm;
	struct aead_request *tx_req;
	struct aead_request *rx_req;
	u64 tx_seq;
	u64 rx_seq;
	u8 *tx_buf;
	u8 *rx_buf;
	u32 rx_off;
	u32 rx_len;
	u32 rx_flags;
	bool rx_held;
	u8 expect_mac[IVSHM_SEC_MAC];
};

bool ivshm_sec_key(unsigned int region, u32 peer, u8 *key);
int ivshm_sec_key_ioctl(void __user *arg);
int ivshm_sec_mac(const u8 *key, u8 label,
		  const struct ivshm_sec_transcript *t, u8 *out);
struct ivshm_sec *ivshm_sec_start(const u8 *key,
				  const struct ivshm_sec_transcript *t,
				  bool connector);
void ivshm_sec_free(struct ivshm_sec *sec);
int ivshm_sec_seal(struct ivshm_sec *sec, u32 len);
int ivshm_sec_open(struct ivshm_sec *sec, u32 len);
void ivshm_sec_exit(void);

#endif /* _NET_IVSHMEM_SECURE_H */
