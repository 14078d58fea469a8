#!/usr/bin/env bash
# tests/slurm/cluster.sh start|stop|status DIR: a single-node Slurm on this machine, for tests.
#
#   start DIR   creates DIR (must not exist or be empty), writes DIR/slurm.conf for this machine,
#               starts munged, slurmctld and slurmd from Debian's packages (slurm-wlm, munge), all
#               as the current user (root), with every file, socket and pid inside DIR and the
#               daemons on free high ports, and waits until `sinfo` shows the node idle.
#               Then `source DIR/env` (or export SLURM_CONF=DIR/slurm.conf) to use sbatch etc.
#   stop DIR    cancels the cluster's jobs, stops the three daemons and any job step they left,
#               and removes DIR.
#   status DIR  prints sinfo and squeue; exit 0 when the controller answers.
#
# Nothing outside DIR is read or written: /etc/slurm and /etc/munge stay as they are, and a system
# munged or slurmd, if any, is left alone. Logs: DIR/log/{munged,slurmctld,slurmd}.log, and
# DIR/log/jobcomp.txt (one line per finished job: this cluster has no accounting database).
set -euo pipefail

die() { echo "cluster.sh: $*" >&2; exit 1; }
usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
DIR=$2
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

# A TCP port nobody listens on (a small race is harmless: start fails loudly and can be rerun).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# stop_pidfile FILE NAME: SIGTERM the daemon, wait up to 15 s, then SIGKILL.
stop_pidfile() {
  local f=$1 pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  echo "cluster.sh: $2 ($pid) ignored SIGTERM, killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

# Processes whose environment names this cluster's slurm.conf (job steps and what they started),
# or whose command line does (slurmstepd).
cluster_pids() {
  local p
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = $$ ] && continue
    { tr '\0' '\n' <"/proc/$p/environ" | grep -qxF "SLURM_CONF=$CONF" ||
      { tr '\0' ' ' <"/proc/$p/cmdline" | grep -q '^slurmstepd' &&
        tr '\0' '\n' <"/proc/$p/environ" | grep -qF "$DIR"; }; } 2>/dev/null && echo "$p"
  done
  return 0
}

dump_logs() {
  local f
  for f in "$DIR"/log/*.log; do
    [ -f "$f" ] || continue
    echo "---- $f (last 30 lines)" >&2
    tail -n 30 "$f" >&2
  done
}

start() {
  local b
  for b in munged mungekey slurmctld slurmd sinfo sbatch scontrol; do
    command -v "$b" >/dev/null || die "$b not found (apt-get install slurm-wlm munge)"
  done
  if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then die "$DIR exists and is not empty"; fi
  mkdir -p "$DIR"/{munge,state,spool,log,tmp}
  chmod 700 "$DIR" "$DIR/munge"

  # munge: its own key, socket, pid and seed files.
  mungekey --create --keyfile="$DIR/munge/munge.key" 2>/dev/null ||
    { dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none; }
  chmod 600 "$DIR/munge/munge.key"
  munged --force --socket="$DIR/munge/munge.sock" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/munge/munged.pid" --seed-file="$DIR/munge/munged.seed" \
    --log-file="$DIR/log/munged.log" ||
    { dump_logs; die "munged did not start"; }

  # This machine's shape, as slurmd itself sees it (CPUs, sockets, cores, threads, memory).
  local host shape ctl_port d_port
  host=$(hostname -s)
  shape=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //')
  ctl_port=$(free_port)
  d_port=$(free_port)
  while [ "$d_port" = "$ctl_port" ]; do d_port=$(free_port); done
  : >"$DIR/plugstack.conf"
  cat >"$CONF" <<CONF
# Written by tests/slurm/cluster.sh: a one-node test cluster, everything under $DIR.
ClusterName=lorasweep-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctl_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.sock
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=${LS_SLURM_DEBUG:-info}
SlurmdDebug=${LS_SLURM_DEBUG:-info}
PlugStackConfig=$DIR/plugstack.conf
TmpFS=$DIR/tmp
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
NodeName=$host NodeAddr=127.0.0.1 $shape State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  echo "export SLURM_CONF=$CONF" >"$DIR/env"

  slurmctld -c -f "$CONF" || { dump_logs; die "slurmctld did not start"; }
  slurmd -f "$CONF" -N "$host" || { dump_logs; die "slurmd did not start"; }

  local state=""
  for _ in $(seq 1 120); do
    state=$(sinfo -h -n "$host" -o '%t' 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 0.5
  done
  if [ "$state" != idle ]; then
    sinfo -N -l >&2 || true
    dump_logs
    die "node $host is not idle after 60 s (state: ${state:-no answer})"
  fi
  echo "cluster.sh: Slurm $(sinfo -V | awk '{print $2}') up in $DIR (node $host, ports $ctl_port/$d_port)"
}

stop() {
  [ -d "$DIR" ] || return 0
  if [ -f "$CONF" ] && [ -s "$DIR/slurmctld.pid" ] && kill -0 "$(cat "$DIR/slurmctld.pid")" 2>/dev/null; then
    scancel --full --quiet --partition=debug 2>/dev/null || true
    for _ in $(seq 1 50); do
      [ -z "$(squeue -h -t all -o '%i %t' 2>/dev/null | grep -v ' CD$' | grep -v ' CA$' | grep -v ' F$' || true)" ] && break
      sleep 0.2
    done
  fi
  stop_pidfile "$DIR/slurmd.pid" slurmd
  stop_pidfile "$DIR/slurmctld.pid" slurmctld
  # Job steps still alive (slurmstepd and its children): this cluster's only.
  local left
  left=$(cluster_pids)
  if [ -n "$left" ]; then
    kill -TERM $left 2>/dev/null || true
    sleep 1
    left=$(cluster_pids)
    [ -z "$left" ] || kill -KILL $left 2>/dev/null || true
  fi
  stop_pidfile "$DIR/munge/munged.pid" munged
  rm -rf "$DIR"
}

status() {
  [ -f "$CONF" ] || die "no cluster in $DIR"
  sinfo && squeue
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
