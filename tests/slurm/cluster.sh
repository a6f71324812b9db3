#!/usr/bin/env bash
# A throwaway one-node Slurm cluster on this machine, for testing the `slurm` profile.
#
#   tests/slurm/cluster.sh up      install slurm-wlm + munge if missing, start munged, slurmctld, slurmd
#   tests/slurm/cluster.sh status  show the daemons this script started and `sinfo`
#   tests/slurm/cluster.sh down    stop exactly the daemons `up` started (PIDs in the state dir)
#
# Needs root and Debian/Ubuntu (apt-get). No systemd: the daemons are started directly.
# Two kinds of cluster (SPARSE_VAE_SLURM_ACCOUNTING):
#   slurmdbd (default)  job accounting as most sites have it: a private MariaDB (port 3307, data in
#                       the state dir) behind slurmdbd, so `sacct` lists jobs and their job steps.
#   none                no accounting: `sacct` has nothing to report, so Snakemake's status queries
#                       must use `--slurm-status-command squeue`.
# Either way finished jobs stay visible to `squeue --states=all` and `scontrol show job` for
# MinJobAge seconds. The node has one pretend GPU (GRES gpu, type "fake", File=/dev/null) so that
# `--gpus=fake:1` requests can be scheduled.
#
# It refuses to run next to a real Slurm: an slurmctld/slurmd it did not start, or an
# /etc/slurm/slurm.conf it did not write (unless SPARSE_VAE_SLURM_FORCE=1: backed up, restored on down).
#
# Environment: SPARSE_VAE_SLURM_STATE (state dir: PIDs, logs, spool; default /tmp/sparse-vae-slurm),
#              SPARSE_VAE_SLURM_WAIT (seconds to wait for the node to be idle; default 60),
#              SPARSE_VAE_SLURM_ACCOUNTING (slurmdbd | none; default slurmdbd). `up` on a running
#              cluster of the other kind restarts it.
set -euo pipefail

STATE=${SPARSE_VAE_SLURM_STATE:-/tmp/sparse-vae-slurm}
WAIT=${SPARSE_VAE_SLURM_WAIT:-60}
ACCOUNTING=${SPARSE_VAE_SLURM_ACCOUNTING:-slurmdbd}
CONF=/etc/slurm/slurm.conf   # the default path: the plugin's inner `srun` does not see SLURM_CONF
GRES_CONF=/etc/slurm/gres.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
DB_PORT=3307                 # the private MariaDB, on 127.0.0.1 only
DB_PASS=sparsevae-test       # throwaway database of a throwaway cluster
NODE=sparsevae-node
PARTITION=debug
MARKER="# written by sparse-vae tests/slurm/cluster.sh"

log() { echo "cluster.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# PID recorded for a daemon, if that process is still alive and still that program.
live_pid() {
    local name=$1 pid
    [[ -f $STATE/$name.pid ]] || return 1
    pid=$(<"$STATE/$name.pid")
    [[ $pid =~ ^[0-9]+$ ]] && [[ -d /proc/$pid ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] || return 1
    echo "$pid"
}

# Read the PID a daemon wrote into its own pid file (waiting briefly) and record it.
record_pid() {
    local name=$1 pidfile=$2 pid=""
    for _ in $(seq 50); do
        [[ -s $pidfile ]] && pid=$(tr -dc 0-9 <"$pidfile") && [[ -n $pid && -d /proc/$pid ]] && break
        pid=""
        sleep 0.1
    done
    [[ -n $pid ]] || return 1
    echo "$pid" >"$STATE/$name.pid"
}

install_packages() {
    local packages=(slurm-wlm munge) programs=(slurmctld slurmd sbatch munged)
    if [[ $ACCOUNTING == slurmdbd ]]; then
        packages+=(slurmdbd mariadb-server)
        programs+=(slurmdbd mariadbd mariadb-install-db)
    fi
    local missing=0 program
    for program in "${programs[@]}"; do
        command -v "$program" >/dev/null || [[ -x /usr/sbin/$program ]] || missing=1
    done
    ((missing)) || return 0
    command -v apt-get >/dev/null || die "slurm is not installed and apt-get is unavailable"
    log "installing ${packages[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >"$STATE/apt.log" 2>&1 && apt-get install -y -q --no-install-recommends \
        "${packages[@]}" >>"$STATE/apt.log" 2>&1 || { tail -n 20 "$STATE/apt.log" >&2; die "apt-get failed"; }
}

# A private MariaDB for slurmdbd: fresh data dir in the state dir, TCP on 127.0.0.1:$DB_PORT.
start_mariadb() {
    local data=$STATE/mysql sock=$STATE/run/mysqld.sock
    rm -rf "$data"
    install -d -o mysql -g mysql -m 0700 "$data"
    chown mysql:mysql "$STATE/run"
    mariadb-install-db --user=mysql --datadir="$data" --auth-root-authentication-method=normal \
        --skip-test-db >"$STATE/mariadb-install.log" 2>&1 \
        || { tail -n 20 "$STATE/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
    # mariadbd stays in the foreground: run it detached and record its pid.
    setsid mariadbd --user=mysql --datadir="$data" --socket="$sock" --port=$DB_PORT \
        --bind-address=127.0.0.1 --pid-file="$STATE/run/mariadbd.pid" \
        --log-error="$STATE/mariadb.log" </dev/null >/dev/null 2>&1 &
    record_pid mariadbd "$STATE/run/mariadbd.pid" || { tail -n 20 "$STATE/mariadb.log" >&2; die "mariadbd did not start"; }
    for _ in $(seq 100); do
        mariadb --socket="$sock" -u root -e "SELECT 1" >/dev/null 2>&1 && break
        sleep 0.2
    done
    mariadb --socket="$sock" -u root -e "
        CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" \
        || { tail -n 20 "$STATE/mariadb.log" >&2; die "could not create the slurm database user"; }
}

start_slurmdbd() {
    printf '%s\n' "$MARKER" AuthType=auth/munge DbdAddr=127.0.0.1 DbdHost=localhost SlurmUser=root \
        StorageType=accounting_storage/mysql StorageHost=127.0.0.1 StoragePort=$DB_PORT \
        StorageUser=slurm StoragePass=$DB_PASS StorageLoc=slurm_acct_db \
        "PidFile=$STATE/run/slurmdbd.pid" "LogFile=$STATE/slurmdbd.log" DebugLevel=info >"$DBD_CONF"
    chmod 0600 "$DBD_CONF"
    : >"$STATE/slurmdbd.log"
    slurmdbd || { log_tails; die "slurmdbd failed to start"; }
    record_pid slurmdbd "$STATE/run/slurmdbd.pid" || { log_tails; die "slurmdbd did not stay up"; }
    local ok=0
    for _ in $(seq 100); do
        timeout 5 sacctmgr -n list cluster >/dev/null 2>&1 && { ok=1; break; }
        sleep 0.3
    done
    ((ok)) || { log_tails; die "slurmdbd does not answer sacctmgr"; }
    timeout 10 sacctmgr -i add cluster sparsevae >/dev/null 2>&1 || true
    timeout 10 sacctmgr -n list cluster format=cluster | grep -qw sparsevae \
        || { log_tails; die "could not register the cluster with slurmdbd"; }
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        log "munged already running (not started by this script; left alone)"
        return
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge /etc/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    rm -f /run/munge/munged.pid
    # munged refuses to run as root; it daemonises and writes its pid file itself.
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid \
        --log-file=/var/log/munge/munged.log || { tail -n 20 /var/log/munge/munged.log >&2; die "munged failed"; }
    record_pid munged /run/munge/munged.pid || die "munged wrote no pid file"
    munge -n </dev/null | unmunge >/dev/null || die "munge credential round trip failed"
}

write_conf() {
    local cpus mem_mb host
    cpus=$(nproc)
    # 80% of the memory available now, so that slurmd never finds less than configured.
    mem_mb=$(awk '/^MemAvailable:/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
    host=$(hostname -s)
    local f
    for f in "$CONF" "$GRES_CONF" "$DBD_CONF"; do
        if [[ -f $f ]] && ! grep -qF "$MARKER" "$f"; then
            log "backing up the existing $f to $STATE/$(basename "$f").orig (restored by down)"
            cp -p "$f" "$STATE/$(basename "$f").orig"
        fi
    done
    mkdir -p "$(dirname "$CONF")"
    cat >"$CONF" <<EOF
$MARKER
# One node on localhost; removed again by \`cluster.sh down\`.
ClusterName=sparsevae
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
$(accounting_conf)
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
# Default memory per CPU for jobs that ask for none (else a job would take the whole node).
DefMemPerCPU=500
# Keep finished jobs visible to \`squeue --states=all\` and \`scontrol show job\` for 10 minutes.
MinJobAge=600
ReturnToService=2
SlurmdParameters=config_overrides
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# One pretend GPU (no device file) of type "fake", so that GPU requests (--gpus=fake:1) schedule.
GresTypes=gpu
NodeName=$NODE NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:fake:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$GRES_CONF" <<EOF
$MARKER
NodeName=$NODE Name=gpu Type=fake File=/dev/null
EOF
}

accounting_conf() {
    if [[ $ACCOUNTING == slurmdbd ]]; then
        printf '%s\n' "# Accounting: slurmdbd on this host (sacct lists jobs and job steps)." \
            AccountingStorageType=accounting_storage/slurmdbd AccountingStorageHost=127.0.0.1 \
            JobAcctGatherType=jobacct_gather/linux JobAcctGatherFrequency=10
    else
        printf '%s\n' "# No accounting database (sacct has nothing to report)." \
            AccountingStorageType=accounting_storage/none JobAcctGatherType=jobacct_gather/none
    fi
}

wait_idle() {
    local state="" deadline=$((SECONDS + WAIT)) name
    while ((SECONDS < deadline)); do
        for name in slurmctld slurmd; do
            live_pid "$name" >/dev/null || { log "$name exited"; return 1; }
        done
        state=$(timeout 5 sinfo -h -n "$NODE" -o %t 2>/dev/null || true)
        case $state in
            idle|mix|alloc) return 0 ;;
            inval*) log "slurmctld rejected the node configuration"; return 1 ;;
            drain*|down*|fail*)
                timeout 5 scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 0.5
    done
    log "node $NODE not idle after ${WAIT}s (state: '${state:-none}')"
    return 1
}

log_tails() {
    local f
    for f in "$STATE/slurmctld.log" "$STATE/slurmd.log" "$STATE/slurmdbd.log" "$STATE/mariadb.log" \
        /var/log/munge/munged.log; do
        [[ -f $f ]] && { echo "--- tail of $f"; tail -n 15 "$f"; }
    done >&2
}

up() {
    [[ $(id -u) == 0 ]] || die "must run as root"
    mkdir -p "$STATE"
    [[ $ACCOUNTING == slurmdbd || $ACCOUNTING == none ]] || die "SPARSE_VAE_SLURM_ACCOUNTING must be slurmdbd or none"
    if live_pid slurmctld >/dev/null && live_pid slurmd >/dev/null; then
        if [[ $(cat "$STATE/accounting" 2>/dev/null) == "$ACCOUNTING" ]]; then
            log "already up (accounting: $ACCOUNTING)"
            wait_idle || { log_tails; exit 1; }
            return
        fi
        log "restarting with accounting: $ACCOUNTING"
    fi
    down_daemons quiet
    # Never take over a real Slurm installation.
    local name pid
    for name in slurmctld slurmd slurmdbd; do
        for pid in $(pgrep -x "$name" 2>/dev/null || true); do
            die "a $name (pid $pid) not started by this script is running; refusing to start a test cluster"
        done
    done
    if [[ -f $CONF ]] && ! grep -qF "$MARKER" "$CONF" && [[ ${SPARSE_VAE_SLURM_FORCE:-0} != 1 ]]; then
        die "$CONF exists and was not written by this script; refusing to replace it" \
            "(SPARSE_VAE_SLURM_FORCE=1 backs it up to $STATE and restores it on down)"
    fi
    install_packages
    start_munge
    write_conf
    rm -rf "$STATE/ctld" "$STATE/spool" "$STATE/run"
    mkdir -p "$STATE/ctld" "$STATE/spool" "$STATE/run"
    : >"$STATE/slurmctld.log"
    : >"$STATE/slurmd.log"
    if [[ $ACCOUNTING == slurmdbd ]]; then
        start_mariadb
        start_slurmdbd
    elif [[ -f $DBD_CONF ]] && grep -qF "$MARKER" "$DBD_CONF"; then
        rm -f "$DBD_CONF"
    fi
    echo "$ACCOUNTING" >"$STATE/accounting"
    # Both daemonise and write their pid files; -c starts with no jobs from an earlier cluster.
    slurmctld -c -f "$CONF" || { log_tails; die "slurmctld failed to start"; }
    record_pid slurmctld "$STATE/run/slurmctld.pid" || { log_tails; die "slurmctld did not stay up"; }
    slurmd -N "$NODE" -f "$CONF" || { log_tails; die "slurmd failed to start"; }
    record_pid slurmd "$STATE/run/slurmd.pid" || { log_tails; die "slurmd did not stay up"; }
    wait_idle || { log_tails; die "the node did not come up"; }
    log "up: node $NODE ($(nproc) CPUs) in partition $PARTITION, accounting: $ACCOUNTING; state in $STATE"
}

# Stop the daemons recorded in the state dir (slurmd, slurmctld, slurmdbd, mariadbd, then munged),
# nothing else.
down_daemons() {
    local name pid
    for name in slurmd slurmctld slurmdbd mariadbd munged; do
        if pid=$(live_pid "$name"); then
            [[ ${1:-} == quiet ]] || log "stopping $name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 100); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
            [[ -d /proc/$pid ]] && kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$STATE/$name.pid"
    done
}

down() {
    [[ $(id -u) == 0 ]] || die "must run as root"
    [[ -d $STATE ]] || { log "nothing to stop (no $STATE)"; return; }
    down_daemons
    # Job steps started by slurmd that outlived it (it does not kill them on shutdown).
    steps=$(pgrep -x slurmstepd 2>/dev/null || true)
    [[ -z $steps ]] || log "note: slurmstepd processes still running: $steps"
    local f
    for f in "$CONF" "$GRES_CONF" "$DBD_CONF"; do
        if [[ -f $f ]] && grep -qF "$MARKER" "$f"; then
            if [[ -f $STATE/$(basename "$f").orig ]]; then
                mv "$STATE/$(basename "$f").orig" "$f"
            else
                rm -f "$f"
            fi
        fi
    done
    log "down"
}

status() {
    local name pid
    for name in munged mariadbd slurmdbd slurmctld slurmd; do
        if pid=$(live_pid "$name"); then echo "$name: running (pid $pid)"; else echo "$name: not running"; fi
    done
    echo "accounting: $(cat "$STATE/accounting" 2>/dev/null || echo unknown)"
    if live_pid slurmctld >/dev/null; then
        sinfo || true
        squeue --states=all || true
    fi
}

case ${1:-} in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
