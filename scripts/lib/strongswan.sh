# Runs a real strongSwan charon (IKEv1 initiator, PSK, kernel-libipsec) inside a namespace.
# Each instance gets its own folder with strongswan.conf, swanctl.conf, a vici socket and a private
# /run (charon's pid file path is compiled in), and is stopped by the PID recorded at start.

# charon_start NS DIR LOCAL REMOTE LOCAL_TS REMOTE_TS PSK [IKE_PROPOSAL] [ESP_PROPOSAL]
# CHARON_CONN_EXTRA and CHARON_CHILD_EXTRA add lines to the connection and to its child
# (e.g. `rekey_time = 6s`); CHARON_DPD_DELAY sets dpd_delay (default 5s); CHARON_LOCAL_ID the
# peer's IKE identity (default: its address).
charon_start() {
    local ns=$1 dir=$2 local_addr=$3 remote_addr=$4 local_ts=$5 remote_ts=$6 psk=$7
    local ike=${8:-aes128-sha1-modp1024} esp=${9:-aes128-sha1}
    charon_make_dir "$dir"
    charon_write_strongswan_conf "$dir" 3 1 \
        "random nonce openssl aes sha1 sha2 md5 des hmac gmp gcm pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici"
    charon_write_swanctl_conf "$dir" "$local_addr" "$remote_addr" "$ike" "$local_ts" "$remote_ts" "$esp" \
        "local { auth = psk
                id = ${CHARON_LOCAL_ID:-$local_addr} }
        remote { auth = psk
                 id = $remote_addr }" \
        "ike-sg1 { id-1 = $remote_addr
              secret = \"$psk\" }"
    charon_launch "$ns" "$dir"
}

# charon_start_cert NS DIR LOCAL REMOTE LOCAL_TS REMOTE_TS CERT KEY CACERT [IKE] [ESP]
# Like charon_start, authenticating with a certificate (RSA or ECDSA key, PEM) instead of a
# pre-shared key; CACERT is the CA that must have issued the gateway's certificate.
# CHARON_LOCAL_ID sets the peer's identity (default: its certificate's subject),
# CHARON_REMOTE_ID the gateway identity it expects (default: any identity the CA certifies).
charon_start_cert() {
    local ns=$1 dir=$2 local_addr=$3 remote_addr=$4 local_ts=$5 remote_ts=$6
    local cert=$7 key=$8 cacert=$9
    local ike=${10:-aes256-sha256-modp2048} esp=${11:-aes128gcm16}
    charon_make_dir "$dir"
    cp "$cert" "$dir/x509/peer.pem"
    cp "$cacert" "$dir/x509ca/ca.pem"
    if grep -q 'BEGIN EC PRIVATE KEY' "$key"; then
        cp "$key" "$dir/ecdsa/peer.key"
    else
        cp "$key" "$dir/rsa/peer.key"
    fi
    local local_id=""
    [ -n "${CHARON_LOCAL_ID:-}" ] && local_id="id = \"$CHARON_LOCAL_ID\""
    # cfg at level 2 logs why a certificate or identity was refused.
    charon_write_strongswan_conf "$dir" 2 2 \
        "random nonce openssl aes sha1 sha2 md5 des hmac gmp gcm pem pkcs1 pkcs8 x509 pubkey constraints kernel-libipsec kernel-netlink socket-default vici"
    charon_write_swanctl_conf "$dir" "$local_addr" "$remote_addr" "$ike" "$local_ts" "$remote_ts" "$esp" \
        "send_cert = always
        local { auth = pubkey
                certs = peer.pem
                $local_id }
        remote { auth = pubkey
                 id = \"${CHARON_REMOTE_ID:-%any}\" }" \
        ""
    charon_launch "$ns" "$dir"
}

# charon_make_dir DIR: the folders charon looks for credentials in, and the private /run.
charon_make_dir() {
    local dir=$1
    mkdir -p "$dir/run" "$dir"/{x509,x509ca,x509aa,x509ocsp,x509crl,x509ac,pubkey,private,rsa,ecdsa,bliss,pkcs8,pkcs12}
}

# charon_write_strongswan_conf DIR RETRANSMIT_TRIES CFG_LOG_LEVEL PLUGINS
# PLUGINS is charon's whole `load` list: its order sets which plugin serves a feature first.
charon_write_strongswan_conf() {
    local dir=$1 tries=$2 cfg_level=$3 plugins=$4
    cat > "$dir/strongswan.conf" <<CONF
charon {
    load = $plugins
    install_routes = yes
    retransmit_tries = $tries
    retransmit_timeout = 2.0
    filelog {
        log {
            path = $dir/charon.log
            default = 1
            ike = 2
            cfg = $cfg_level
            time_format = %b %e %T
            # Tests read the log while charon runs.
            flush_line = yes
        }
    }
    plugins { vici { socket = unix://$dir/charon.vici } }
}
swanctl { socket = unix://$dir/charon.vici }
CONF
}

# charon_write_swanctl_conf DIR LOCAL REMOTE IKE LOCAL_TS REMOTE_TS ESP AUTH SECRETS
# One connection `sg1` with one child `lan`; AUTH holds its authentication lines (the local and
# remote rounds), SECRETS what goes into `secrets { }` (nothing with certificates).
charon_write_swanctl_conf() {
    local dir=$1 local_addr=$2 remote_addr=$3 ike=$4 local_ts=$5 remote_ts=$6 esp=$7
    local auth=$8 secrets=$9
    cat > "$dir/swanctl.conf" <<CONF
connections {
    sg1 {
        version = 1
        aggressive = no
        local_addrs = $local_addr
        remote_addrs = $remote_addr
        proposals = $ike
        dpd_delay = ${CHARON_DPD_DELAY:-5s}
        ${CHARON_CONN_EXTRA:-}
        $auth
        children {
            lan {
                local_ts = $local_ts
                remote_ts = $remote_ts
                esp_proposals = $esp
                start_action = none
                ${CHARON_CHILD_EXTRA:-}
            }
        }
    }
}
CONF
    if [ -n "$secrets" ]; then
        cat >> "$dir/swanctl.conf" <<CONF
secrets {
    $secrets
}
CONF
    fi
}

# charon_launch NS DIR: starts charon in NS on DIR's configuration (PID in DIR/charon.pid),
# waits for its vici socket and loads the connection.
charon_launch() {
    local ns=$1 dir=$2
    ip netns exec "$ns" env STRONGSWAN_CONF="$dir/strongswan.conf" \
        sh -c "mount --bind '$dir/run' /run && exec /usr/lib/ipsec/charon" >"$dir/stdout.log" 2>&1 &
    echo $! > "$dir/charon.pid"
    local i
    for i in $(seq 1 50); do
        [ -S "$dir/charon.vici" ] && break
        sleep 0.1
    done
    charon_swanctl "$ns" "$dir" --load-all --file "$dir/swanctl.conf" >/dev/null
}

charon_swanctl() {
    local ns=$1 dir=$2
    shift 2
    ip netns exec "$ns" env STRONGSWAN_CONF="$dir/strongswan.conf" swanctl "$@"
}

charon_initiate() {
    local ns=$1 dir=$2
    timeout 30 ip netns exec "$ns" env STRONGSWAN_CONF="$dir/strongswan.conf" \
        swanctl --initiate --ike sg1 --child lan --timeout 20
}

charon_stop() {
    local dir=$1 pid
    [ -f "$dir/charon.pid" ] || return 0
    pid=$(cat "$dir/charon.pid")
    kill "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/charon.pid"
}
