// SPDX-License-Identifier: GPL-2.0
/* af_ivshmem_diag: the sock_diag handler of AF_IVSHMEM, a module of its
 * own as vsock_diag is.  It answers SOCK_DIAG_BY_FAMILY requests for the
 * family number af_ivshmem registered: a dump of every listed socket, or
 * one socket named by inode and cookie.  af_ivshmem walks its sockets
 * (ivshm_diag_next()) and describes each (ivshm_diag_fill()); this module
 * filters and builds the netlink replies.
 *
 * The interface is include/uapi/linux/ivshmem_diag.h.
 */
#include <linux/module.h>
#include <linux/sock_diag.h>
#include <net/netlink.h>
#include <net/sock.h>
#include <uapi/linux/ivshmem_diag.h>

#include "af_ivshmem.h"

/* The largest reply for one socket. */
#define IVSHM_DIAG_MSG_SIZE						\
	(NLMSG_ALIGN(sizeof(struct ivshmem_diag_msg)) +			\
	 nla_total_size(sizeof(struct ivshmem_diag_channels)) +		\
	 nla_total_size(SK_MEMINFO_VARS * sizeof(u32)))

/* Describes @sk for a requester whose uids are in @ns.  Returns -ENOENT
 * for a socket that is not listed.  May sleep.
 */
static int ivshm_diag_describe(struct sock *sk, struct user_namespace *ns,
			       struct ivshmem_diag_msg *msg,
			       struct ivshmem_diag_channels *chans)
{
	int err = ivshm_diag_fill(sk, msg, chans);

	if (err)
		return err;
	msg->idiag_family = ivshm_family();
	msg->idiag_ino = sock_i_ino(sk);
	msg->idiag_uid = from_kuid_munged(ns, sock_i_uid(sk));
	sock_diag_save_cookie(sk, msg->idiag_cookie);
	return 0;
}

/* Appends the reply for @sk to @skb: -EMSGSIZE if it does not fit. */
static int ivshm_diag_put(struct sk_buff *skb, struct sock *sk,
			  const struct ivshmem_diag_msg *msg,
			  const struct ivshmem_diag_channels *chans,
			  u32 show, u32 portid, u32 seq, u16 flags)
{
	struct nlmsghdr *nlh;

	nlh = nlmsg_put(skb, portid, seq, SOCK_DIAG_BY_FAMILY, sizeof(*msg),
			flags);
	if (!nlh)
		return -EMSGSIZE;
	memcpy(nlmsg_data(nlh), msg, sizeof(*msg));
	/* Only sockets that have a channel get the attribute. */
	if ((show & IVSHMEM_SHOW_CHANNELS) &&
	    (chans->tx_index != IVSHMEM_DIAG_NO_CHANNEL ||
	     chans->rx_index != IVSHMEM_DIAG_NO_CHANNEL) &&
	    nla_put(skb, IVSHMEM_DIAG_CHANNELS, sizeof(*chans), chans))
		goto cancel;
	if ((show & IVSHMEM_SHOW_MEMINFO) &&
	    sock_diag_put_meminfo(sk, skb, IVSHMEM_DIAG_MEMINFO))
		goto cancel;
	nlmsg_end(skb, nlh);
	return 0;

cancel:
	nlmsg_cancel(skb, nlh);
	return -EMSGSIZE;
}

/* One part of a dump.  cb->args[0] is the position to resume from (see
 * ivshm_diag_next()): the socket that did not fit in the last skb.
 */
static int ivshm_diag_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	const struct ivshmem_diag_req *req = nlmsg_data(cb->nlh);
	struct user_namespace *ns = sk_user_ns(NETLINK_CB(cb->skb).sk);
	u32 portid = NETLINK_CB(cb->skb).portid;
	struct net *net = sock_net(skb->sk);
	struct ivshmem_diag_channels chans;
	unsigned long pos = cb->args[0];
	struct ivshmem_diag_msg msg;
	struct sock *sk = NULL;
	unsigned long at;

	for (;;) {
		at = pos;
		sk = ivshm_diag_next(sk, &pos);
		if (!sk)
			break;
		if (!net_eq(sock_net(sk), net))
			continue;
		if (req->idiag_types &&
		    !(req->idiag_types & BIT(sk->sk_type)))
			continue;
		if (ivshm_diag_describe(sk, ns, &msg, &chans))
			continue;
		if (req->idiag_states &&
		    !(req->idiag_states & BIT(msg.idiag_state)))
			continue;
		if (ivshm_diag_put(skb, sk, &msg, &chans, req->idiag_show,
				   portid, cb->nlh->nlmsg_seq, NLM_F_MULTI)) {
			sock_put(sk);
			pos = at;
			break;
		}
	}
	cb->args[0] = pos;
	return skb->len;
}

/* The socket of inode @ino, with a reference; NULL if there is none. */
static struct sock *ivshm_diag_lookup(struct net *net, u32 ino)
{
	unsigned long pos = 0;
	struct sock *sk = NULL;

	if (!ino)
		return NULL;
	while ((sk = ivshm_diag_next(sk, &pos)))
		if (net_eq(sock_net(sk), net) && sock_i_ino(sk) == ino)
			break;
	return sk;
}

/* An exact request: the one socket named by inode and cookie. */
static int ivshm_diag_get_exact(struct sk_buff *in_skb,
				const struct nlmsghdr *nlh,
				const struct ivshmem_diag_req *req)
{
	struct user_namespace *ns = sk_user_ns(NETLINK_CB(in_skb).sk);
	u32 portid = NETLINK_CB(in_skb).portid;
	struct net *net = sock_net(in_skb->sk);
	struct ivshmem_diag_channels chans;
	struct ivshmem_diag_msg msg;
	struct sk_buff *rep;
	struct sock *sk;
	int err;

	sk = ivshm_diag_lookup(net, req->idiag_ino);
	if (!sk)
		return -ENOENT;
	/* Another cookie: the socket named is gone, its inode reused. */
	err = sock_diag_check_cookie(sk, req->idiag_cookie) ? -ENOENT :
	      ivshm_diag_describe(sk, ns, &msg, &chans);
	if (err)
		goto out;
	rep = nlmsg_new(IVSHM_DIAG_MSG_SIZE, GFP_KERNEL);
	if (!rep) {
		err = -ENOMEM;
		goto out;
	}
	err = ivshm_diag_put(rep, sk, &msg, &chans, req->idiag_show, portid,
			     nlh->nlmsg_seq, 0);
	if (err) {
		nlmsg_free(rep);
		goto out;
	}
	err = nlmsg_unicast(net->diag_nlsk, rep, portid);
out:
	sock_put(sk);
	return err;
}

static int ivshm_diag_handler_dump(struct sk_buff *skb, struct nlmsghdr *h)
{
	struct net *net = sock_net(skb->sk);

	if (nlmsg_len(h) < (int)sizeof(struct ivshmem_diag_req))
		return -EINVAL;
	if (h->nlmsg_flags & NLM_F_DUMP) {
		struct netlink_dump_control c = {
			.dump = ivshm_diag_dump,
		};

		return netlink_dump_start(net->diag_nlsk, skb, h, &c);
	}
	return ivshm_diag_get_exact(skb, h, nlmsg_data(h));
}

/* The family is af_ivshmem's module parameter: set at init. */
static struct sock_diag_handler ivshm_diag_handler = {
	.owner = THIS_MODULE,
	.dump = ivshm_diag_handler_dump,
};

static int __init ivshm_diag_init(void)
{
	ivshm_diag_handler.family = ivshm_family();
	return sock_diag_register(&ivshm_diag_handler);
}

static void __exit ivshm_diag_exit(void)
{
	sock_diag_unregister(&ivshm_diag_handler);
}

module_init(ivshm_diag_init);
module_exit(ivshm_diag_exit);

MODULE_DESCRIPTION("AF_IVSHMEM socket monitoring via SOCK_DIAG");
MODULE_LICENSE("GPL");
/* Loaded on demand for the default family; load it by hand for another. */
#ifdef AF_IVSHMEM
MODULE_ALIAS_NET_PF_PROTO_TYPE(PF_NETLINK, NETLINK_SOCK_DIAG, AF_IVSHMEM);
#else
MODULE_ALIAS_NET_PF_PROTO_TYPE(PF_NETLINK, NETLINK_SOCK_DIAG,
			       IVSHMEM_FAMILY_DEFAULT);
#endif
