// SPDX-License-Identifier: GPL-2.0
/* AF_IVSHMEM connection security: the pairwise keys the administrator
 * loads, the MACs and key derivation of the connect-time handshake, and
 * the AEAD that seals and opens each record.  The protocol itself (what
 * goes where in the rings) is in socket.c; Documentation/networking/
 * af_ivshmem.rst, "Encryption and key exchange", describes both.
 */
#include <asm/unaligned.h>
#include <crypto/aead.h>
#include <crypto/algapi.h>
#include <crypto/hash.h>
#include <linux/capability.h>
#include <linux/mutex.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "af_ivshmem.h"
#include "secure.h"

/* The pairwise keys: one per (region index, peer id), in module memory,
 * so that any context (connect(), the event work answering a request)
 * finds them whatever its credentials.
 */
struct ivshm_sec_keys {
	u8 key[IVSHM_MAX_DEVICES][IVSHM_MAX_PEERS][IVSHMEM_KEY_LEN];
	DECLARE_BITMAP(set, IVSHM_MAX_DEVICES * IVSHM_MAX_PEERS);
};

static struct ivshm_sec_keys *ivshm_keys;
static DEFINE_MUTEX(ivshm_keys_mutex);

/* HMAC-SHA256, one transform: its key changes with each use. */
static struct crypto_shash *ivshm_hmac;
static DEFINE_MUTEX(ivshm_hmac_mutex);

static unsigned int ivshm_key_slot(unsigned int region, u32 peer)
{
	return region * IVSHM_MAX_PEERS + peer;
}

/**
 * ivshm_sec_key() - the pairwise key shared with a peer
 * @region: region index
 * @peer: the peer's id
 * @key: filled with the key when there is one (may be NULL)
 *
 * Return: true if a key for @peer on @region is loaded.
 */
bool ivshm_sec_key(unsigned int region, u32 peer, u8 *key)
{
	bool found = false;

	if (region >= IVSHM_MAX_DEVICES || peer >= IVSHM_MAX_PEERS)
		return false;
	mutex_lock(&ivshm_keys_mutex);
	if (ivshm_keys &&
	    test_bit(ivshm_key_slot(region, peer), ivshm_keys->set)) {
		found = true;
		if (key)
			memcpy(key, ivshm_keys->key[region][peer],
			       IVSHMEM_KEY_LEN);
	}
	mutex_unlock(&ivshm_keys_mutex);
	return found;
}

/**
 * ivshm_sec_key_ioctl() - IOCTL_IVSHMEM_SET_KEY
 * @arg: a struct ivshmem_key in user memory
 *
 * Sets or (%IVSHMEM_KEY_F_DELETE) deletes the key of one peer, or with
 * %IVSHMEM_KEY_F_DELETE and peer %IVSHMEM_PEER_ANY every key of the
 * region.  Needs CAP_NET_ADMIN.  Connections already set up keep their
 * session keys.
 *
 * Return: 0 or a negative errno.
 */
int ivshm_sec_key_ioctl(void __user *arg)
{
	struct ivshmem_key k;
	unsigned int region;
	int err = 0;
	u32 p;

	if (!capable(CAP_NET_ADMIN))
		return -EPERM;
	if (copy_from_user(&k, arg, sizeof(k)))
		return -EFAULT;
	region = k.region == IVSHMEM_REGION_ANY ? 0 : k.region;
	if (region >= IVSHM_MAX_DEVICES || k.reserved ||
	    (k.flags & ~IVSHMEM_KEY_F_DELETE) ||
	    (k.peer >= IVSHM_MAX_PEERS &&
	     !(k.peer == IVSHMEM_PEER_ANY && k.flags))) {
		err = -EINVAL;
		goto out;
	}
	mutex_lock(&ivshm_keys_mutex);
	if (!ivshm_keys)
		ivshm_keys = kzalloc(sizeof(*ivshm_keys), GFP_KERNEL);
	if (!ivshm_keys) {
		err = -ENOMEM;
	} else if (!k.flags) {
		memcpy(ivshm_keys->key[region][k.peer], k.key,
		       IVSHMEM_KEY_LEN);
		set_bit(ivshm_key_slot(region, k.peer), ivshm_keys->set);
	} else {
		for (p = 0; p < IVSHM_MAX_PEERS; p++) {
			if (k.peer != IVSHMEM_PEER_ANY && p != k.peer)
				continue;
			memzero_explicit(ivshm_keys->key[region][p],
					 IVSHMEM_KEY_LEN);
			clear_bit(ivshm_key_slot(region, p), ivshm_keys->set);
		}
	}
	mutex_unlock(&ivshm_keys_mutex);
out:
	memzero_explicit(&k, sizeof(k));
	return err;
}

/**
 * ivshm_sec_mac() - HMAC-SHA256(@key, @label || @t)
 * @key: the pairwise key (%IVSHMEM_KEY_LEN bytes)
 * @label: what the MAC is for: 'A' and 'C' for the acceptor's and the
 *	connector's proof, 'a' and 'c' for the session key of data the
 *	acceptor and the connector send
 * @t: the handshake transcript
 * @out: %IVSHM_SEC_MAC bytes
 *
 * Return: 0 or a negative errno (no hmac(sha256) in this kernel).
 */
int ivshm_sec_mac(const u8 *key, u8 label,
		  const struct ivshm_sec_transcript *t, u8 *out)
{
	struct crypto_shash *tfm;
	int err;

	mutex_lock(&ivshm_hmac_mutex);
	if (!ivshm_hmac) {
		tfm = crypto_alloc_shash("hmac(sha256)", 0, 0);
		if (IS_ERR(tfm)) {
			err = PTR_ERR(tfm);
			goto out;
		}
		ivshm_hmac = tfm;
	}
	err = crypto_shash_setkey(ivshm_hmac, key, IVSHMEM_KEY_LEN);
	if (!err) {
		SHASH_DESC_ON_STACK(desc, ivshm_hmac);

		desc->tfm = ivshm_hmac;
		err = crypto_shash_init(desc) ?:
		      crypto_shash_update(desc, &label, 1) ?:
		      crypto_shash_finup(desc, (const u8 *)t, sizeof(*t), out);
		shash_desc_zero(desc);
	}
out:
	mutex_unlock(&ivshm_hmac_mutex);
	return err;
}

void ivshm_sec_free(struct ivshm_sec *sec)
{
	if (!sec)
		return;
	aead_request_free(sec->tx_req);
	aead_request_free(sec->rx_req);
	if (!IS_ERR_OR_NULL(sec->tx_tfm))
		crypto_free_aead(sec->tx_tfm);
	if (!IS_ERR_OR_NULL(sec->rx_tfm))
		crypto_free_aead(sec->rx_tfm);
	kfree_sensitive(sec->tx_buf);
	kfree_sensitive(sec->rx_buf);
	kfree_sensitive(sec);
}

/* An AEAD transform keyed with HMAC(@key, @label || @t). */
static struct crypto_aead *ivshm_sec_aead(const u8 *key, u8 label,
					  const struct ivshm_sec_transcript *t)
{
	u8 k[IVSHM_SEC_MAC];
	struct crypto_aead *tfm;
	int err;

	/* Any implementation, the fastest first (with AES-NI: the SIMD
	 * one, which may complete asynchronously: ivshm_sec_crypt() waits).
	 */
	tfm = crypto_alloc_aead(IVSHM_SEC_AEAD, 0, 0);
	if (IS_ERR(tfm))
		return tfm;
	err = ivshm_sec_mac(key, label, t, k) ?:
	      crypto_aead_setkey(tfm, k, sizeof(k)) ?:
	      crypto_aead_setauthsize(tfm, IVSHM_SEC_TAG);
	memzero_explicit(k, sizeof(k));
	if (err) {
		crypto_free_aead(tfm);
		return ERR_PTR(err);
	}
	return tfm;
}

/**
 * ivshm_sec_start() - the session of a connection whose handshake passed
 * @key: the pairwise key
 * @t: the handshake transcript
 * @connector: true on the connecting side
 *
 * Return: the session, or an ERR_PTR (-ENOMEM, or -ENOENT when the
 * kernel lacks the AEAD: load gcm first).
 */
struct ivshm_sec *ivshm_sec_start(const u8 *key,
				  const struct ivshm_sec_transcript *t,
				  bool connector)
{
	struct ivshm_sec *sec;
	int err = -ENOMEM;

	sec = kzalloc(sizeof(*sec), GFP_KERNEL);
	if (!sec)
		return ERR_PTR(-ENOMEM);
	sec->tx_buf = kmalloc(IVSHM_SEC_REC_MAX, GFP_KERNEL);
	sec->rx_buf = kmalloc(IVSHM_SEC_REC_MAX, GFP_KERNEL);
	if (!sec->tx_buf || !sec->rx_buf)
		goto fail;
	sec->tx_tfm = ivshm_sec_aead(key, connector ? 'c' : 'a', t);
	if (IS_ERR(sec->tx_tfm)) {
		err = PTR_ERR(sec->tx_tfm);
		goto fail;
	}
	sec->rx_tfm = ivshm_sec_aead(key, connector ? 'a' : 'c', t);
	if (IS_ERR(sec->rx_tfm)) {
		err = PTR_ERR(sec->rx_tfm);
		goto fail;
	}
	err = -ENOMEM;
	sec->tx_req = aead_request_alloc(sec->tx_tfm, GFP_KERNEL);
	sec->rx_req = aead_request_alloc(sec->rx_tfm, GFP_KERNEL);
	if (!sec->tx_req || !sec->rx_req)
		goto fail;
	return sec;
fail:
	ivshm_sec_free(sec);
	return ERR_PTR(err);
}

/* Seals or opens @buf in place: a record header (the associated data),
 * @len payload bytes, then the tag.  The nonce is the record's sequence
 * number in its direction, never written to the ring.
 */
static int ivshm_sec_crypt(struct aead_request *req, u64 seq, u8 *buf,
			   u32 len, bool seal)
{
	u8 iv[IVSHM_SEC_IV] = {};
	struct scatterlist sg;
	DECLARE_CRYPTO_WAIT(wait);

	put_unaligned_le64(seq, iv + IVSHM_SEC_IV - sizeof(u64));
	sg_init_one(&sg, buf, sizeof(struct ivshm_record) + len +
			      IVSHM_SEC_TAG);
	aead_request_set_callback(req, CRYPTO_TFM_REQ_MAY_SLEEP |
				  CRYPTO_TFM_REQ_MAY_BACKLOG, crypto_req_done, &wait);
	aead_request_set_ad(req, sizeof(struct ivshm_record));
	aead_request_set_crypt(req, &sg, &sg, seal ? len : len + IVSHM_SEC_TAG,
			       iv);
	return crypto_wait_req(seal ? crypto_aead_encrypt(req) :
			       crypto_aead_decrypt(req), &wait);
}

/**
 * ivshm_sec_seal() - encrypt the record in @sec->tx_buf
 * @sec: the session
 * @len: its payload length (at most %IVSHM_SEC_PAYLOAD_MAX)
 *
 * The caller wrote the header and the payload; the tag follows them.
 *
 * Return: 0 or a negative errno.
 */
int ivshm_sec_seal(struct ivshm_sec *sec, u32 len)
{
	int err = ivshm_sec_crypt(sec->tx_req, sec->tx_seq, sec->tx_buf, len,
				  true);

	if (!err)
		sec->tx_seq++;
	return err;
}

/**
 * ivshm_sec_open() - decrypt and check the record in @sec->rx_buf
 * @sec: the session
 * @len: its payload length, as its (validated) header says
 *
 * Return: 0, -EBADMSG when the record is not the next one the peer
 * sealed (altered, replayed, reordered or from elsewhere), or another
 * negative errno.
 */
int ivshm_sec_open(struct ivshm_sec *sec, u32 len)
{
	int err = ivshm_sec_crypt(sec->rx_req, sec->rx_seq, sec->rx_buf, len,
				  false);

	if (!err)
		sec->rx_seq++;
	return err;
}

void ivshm_sec_exit(void)
{
	if (ivshm_hmac)
		crypto_free_shash(ivshm_hmac);
	ivshm_hmac = NULL;
	kfree_sensitive(ivshm_keys);
	ivshm_keys = NULL;
}
