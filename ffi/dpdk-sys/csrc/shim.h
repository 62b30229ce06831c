/*
 * Out-of-line wrappers for DPDK's static inline functions, which bindgen cannot bind.
 * Everything on the per-packet path here works on whole bursts so the call cost is paid once per
 * burst, not per packet.
 */
#ifndef DYNTUN_DPDK_SHIM_H
#define DYNTUN_DPDK_SHIM_H

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

uint16_t dyntun_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t dyntun_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);

struct rte_mbuf *dyntun_pktmbuf_alloc(struct rte_mempool *pool);
int dyntun_pktmbuf_alloc_bulk(struct rte_mempool *pool, struct rte_mbuf **mbufs, unsigned count);
void dyntun_pktmbuf_free(struct rte_mbuf *m);
void dyntun_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned count);
char *dyntun_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *dyntun_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *dyntun_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int dyntun_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
void *dyntun_pktmbuf_data(struct rte_mbuf *m);
uint16_t dyntun_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t dyntun_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t dyntun_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t dyntun_pktmbuf_tailroom(const struct rte_mbuf *m);
int dyntun_pktmbuf_is_contiguous(const struct rte_mbuf *m);

unsigned dyntun_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n, unsigned *free_space);
unsigned dyntun_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n, unsigned *available);
unsigned dyntun_ring_count(const struct rte_ring *r);
unsigned dyntun_ring_free_count(const struct rte_ring *r);

/* RSS hash types for IP/TCP/UDP: a function because the macro is built from RTE_BIT64 calls. */
uint64_t dyntun_eth_rss_ip_tcp_udp(void);

unsigned dyntun_lcore_id(void);
uint64_t dyntun_tsc_cycles(void);
uint64_t dyntun_tsc_hz(void);
int dyntun_errno(void);
void dyntun_set_errno(int value);

#endif
