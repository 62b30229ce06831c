/*
 * vrouter_loop: a minimal host that embeds dyntun the way a vRouter would. The host owns the
 * EAL, the ports, the lcore and the mbufs; dyntun gets the host's bursts and hands back, per
 * output port, the mbufs to transmit. Its control thread (IKE, ARP, reverse routes) runs
 * inside the library and reports tunnels and reverse routes through a callback.
 *
 *   vrouter_loop [EAL options] -- CONFIG SOCKET OUTSIDE_PORT_NAME INSIDE_PORT_NAME
 *
 * e.g. --vdev=net_af_packet0,iface=sg1-out --vdev=net_af_packet1,iface=sg1-in ... --
 *      examples/sg1-manual.conf /run/dyntun/embedded.sock net_af_packet0 net_af_packet1
 *
 * The two ports back the configuration's ge-0/0/0 (outside) and ge-0/0/1 (inside). Output,
 * one line each, on stdout: "event ..." for every callback, "show-json-begin" / the JSON of
 * "show services ipsec-vpn ipsec security-associations" / "show-json-end" after a tunnel came
 * up, "counters {...}" at exit. SIGINT or SIGTERM stops it: deletes go to the peers first.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "dyntun.h"

#define BURST 32
#define PORTS 2
#define RING_SIZE 1024

static volatile sig_atomic_t stop_requested;
/* Set by the callback on dyntun's control thread, read by the forwarding loop. */
static atomic_int tunnels_changed;

static void on_signal(int signal_number)
{
    (void)signal_number;
    stop_requested = 1;
}

static const char *event_name(dyntun_event_kind kind)
{
    switch (kind) {
    case DYNTUN_EVENT_TUNNEL_UP:
        return "tunnel-up";
    case DYNTUN_EVENT_TUNNEL_DOWN:
        return "tunnel-down";
    case DYNTUN_EVENT_ROUTE_INSERT:
        return "route-insert";
    case DYNTUN_EVENT_ROUTE_WITHDRAW:
        return "route-withdraw";
    }
    return "unknown";
}

/* Runs on dyntun's control thread: print and return; a real host would update its FIB here. */
static void on_event(const dyntun_event *event, void *user_data)
{
    (void)user_data;
    printf("event %s tunnel=%u service-set=%s peer=%s:%u local=%s remote=%s table=%s prefix=%s\n",
           event_name(event->kind), event->tunnel_id, event->service_set, event->remote_gateway,
           event->remote_port, event->local_identity, event->remote_identity,
           event->route_table ? event->route_table : "-",
           event->route_prefix ? event->route_prefix : "-");
    fflush(stdout);
    if (event->kind == DYNTUN_EVENT_TUNNEL_UP)
        atomic_store(&tunnels_changed, 1);
}

static char *read_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    size_t capacity = 4096, length = 0;
    char *text = malloc(capacity);
    size_t got;
    while (text && (got = fread(text + length, 1, capacity - length - 1, file)) > 0) {
        length += got;
        if (capacity - length <= 1) {
            char *bigger = realloc(text, capacity * 2);
            if (!bigger) {
                free(text);
                text = NULL;
                break;
            }
            text = bigger;
            capacity *= 2;
        }
    }
    fclose(file);
    if (text)
        text[length] = '\0';
    return text;
}

static int start_port(uint16_t port, struct rte_mempool *pool)
{
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
    if (rte_eth_dev_configure(port, 1, 1, &conf) < 0)
        return -1;
    if (rte_eth_rx_queue_setup(port, 0, RING_SIZE, rte_eth_dev_socket_id(port), NULL, pool) < 0)
        return -1;
    if (rte_eth_tx_queue_setup(port, 0, RING_SIZE, rte_eth_dev_socket_id(port), NULL) < 0)
        return -1;
    if (rte_eth_dev_start(port) < 0)
        return -1;
    rte_eth_promiscuous_enable(port);
    return 0;
}

static void print_show_json(dyntun_gateway *gateway)
{
    char *json = NULL;
    if (dyntun_gateway_show_json(gateway, "show services ipsec-vpn ipsec security-associations",
                                 &json) != DYNTUN_OK) {
        fprintf(stderr, "show_json: %s\n", dyntun_last_error());
        return;
    }
    printf("show-json-begin\n%sshow-json-end\n", json);
    fflush(stdout);
    dyntun_string_free(json);
}

/* Everything the worker has for each port goes out on the host's own tx queue. */
static void transmit_all(dyntun_worker *worker, const uint16_t *ports)
{
    struct rte_mbuf *out[BURST];
    for (int index = 0; index < PORTS; index++) {
        uint16_t ready;
        while ((ready = dyntun_worker_take_tx(worker, ports[index], out, BURST)) > 0) {
            uint16_t sent = rte_eth_tx_burst(ports[index], 0, out, ready);
            for (uint16_t unsent = sent; unsent < ready; unsent++)
                rte_pktmbuf_free(out[unsent]);
            if (ready < BURST)
                break;
        }
    }
}

int main(int argc, char **argv)
{
    int parsed = rte_eal_init(argc, argv);
    if (parsed < 0) {
        fprintf(stderr, "EAL: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    argc -= parsed;
    argv += parsed;
    if (argc != 5) {
        fprintf(stderr, "usage: vrouter_loop [EAL options] -- CONFIG SOCKET OUTSIDE_PORT "
                        "INSIDE_PORT\n");
        rte_eal_cleanup();
        return 1;
    }
    const char *config_path = argv[1], *socket_path = argv[2];
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    dyntun_log_init("info");

    struct rte_mempool *pool =
        rte_pktmbuf_pool_create("host_pool", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                (int)rte_socket_id());
    uint16_t ports[PORTS];
    for (int index = 0; index < PORTS; index++) {
        if (!pool || rte_eth_dev_get_port_by_name(argv[3 + index], &ports[index]) != 0 ||
            start_port(ports[index], pool) != 0) {
            fprintf(stderr, "port %s: cannot start\n", argv[3 + index]);
            rte_eal_cleanup();
            return 1;
        }
    }

    char *config = read_file(config_path);
    if (!config) {
        fprintf(stderr, "%s: %s\n", config_path, strerror(errno));
        rte_eal_cleanup();
        return 1;
    }
    dyntun_port_binding bindings[PORTS] = {
        {.interface = "ge-0/0/0", .port_id = ports[0]},
        {.interface = "ge-0/0/1", .port_id = ports[1]},
    };
    dyntun_gateway *gateway = NULL;
    dyntun_status status =
        dyntun_gateway_create(config, config_path, bindings, PORTS, socket_path, &gateway);
    free(config);
    if (status != DYNTUN_OK) {
        fprintf(stderr, "dyntun_gateway_create (status %d):\n%s\n", (int)status,
                dyntun_last_error());
        rte_eal_cleanup();
        return 2;
    }
    dyntun_worker *worker = NULL;
    if (dyntun_gateway_worker_count(gateway) != 1 ||
        dyntun_gateway_take_worker(gateway, 0, &worker) != DYNTUN_OK ||
        dyntun_gateway_set_event_callback(gateway, on_event, NULL) != DYNTUN_OK ||
        dyntun_gateway_start(gateway) != DYNTUN_OK) {
        fprintf(stderr, "dyntun: %s\n", dyntun_last_error());
        dyntun_worker_free(worker);
        dyntun_gateway_free(gateway);
        rte_eal_cleanup();
        return 1;
    }
    printf("running\n");
    fflush(stdout);

    struct rte_mbuf *received[BURST];
    uint8_t verdicts[BURST];
    uint64_t totals[DYNTUN_VERDICT_HELD + 1] = {0};
    int stopping = 0;
    /* Until stopped, and then until the control thread has sent its deletes through us. */
    while (!stopping || !dyntun_gateway_is_stopped(gateway)) {
        if (stop_requested && !stopping) {
            dyntun_gateway_request_stop(gateway);
            stopping = 1;
        }
        int busy = dyntun_worker_poll(worker);
        for (int index = 0; index < PORTS; index++) {
            uint16_t count = rte_eth_rx_burst(ports[index], 0, received, BURST);
            if (count == 0)
                continue;
            busy = 1;
            dyntun_burst_result result;
            if (dyntun_worker_rx(worker, ports[index], received, count, verdicts, &result) !=
                DYNTUN_OK) {
                fprintf(stderr, "dyntun_worker_rx: %s\n", dyntun_last_error());
                continue;
            }
            for (uint16_t frame = 0; frame < count; frame++)
                if (verdicts[frame] <= DYNTUN_VERDICT_HELD)
                    totals[verdicts[frame]]++;
        }
        transmit_all(worker, ports);
        if (atomic_exchange(&tunnels_changed, 0))
            print_show_json(gateway);
        if (!busy)
            usleep(50);
    }
    /* The last deletes the control thread queued. */
    dyntun_worker_poll(worker);
    transmit_all(worker, ports);

    char *counters = NULL;
    if (dyntun_worker_counters_json(worker, &counters) == DYNTUN_OK) {
        printf("counters %s\n", counters);
        dyntun_string_free(counters);
    }
    printf("verdicts transmit=%llu punted=%llu handed-off=%llu dropped=%llu fragmented=%llu "
           "held=%llu\n",
           (unsigned long long)totals[DYNTUN_VERDICT_TRANSMIT],
           (unsigned long long)totals[DYNTUN_VERDICT_PUNTED],
           (unsigned long long)totals[DYNTUN_VERDICT_HANDED_OFF],
           (unsigned long long)totals[DYNTUN_VERDICT_DROPPED],
           (unsigned long long)totals[DYNTUN_VERDICT_FRAGMENTED],
           (unsigned long long)totals[DYNTUN_VERDICT_HELD]);
    fflush(stdout);
    dyntun_worker_free(worker);
    dyntun_gateway_free(gateway);
    for (int index = 0; index < PORTS; index++) {
        rte_eth_dev_stop(ports[index]);
        rte_eth_dev_close(ports[index]);
    }
    rte_eal_cleanup();
    return 0;
}
