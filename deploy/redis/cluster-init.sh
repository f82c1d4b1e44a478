#!/bin/sh
# Forms the Redis Cluster of the compose `cluster` profile, once.
# CLUSTER_NODES: comma-separated host:port of every node; CLUSTER_REPLICAS: replicas per primary.
# A cluster that is already formed (nodes.conf kept in the node volumes) is left alone.
set -eu

nodes=$(printf '%s' "${CLUSTER_NODES:?CLUSTER_NODES is not set}" | tr ',' ' ')
replicas=${CLUSTER_REPLICAS:-1}
first=${nodes%% *}
first_host=${first%:*}
first_port=${first##*:}

cluster_ok() {
	redis-cli -h "$first_host" -p "$first_port" cluster info 2>/dev/null | grep -q '^cluster_state:ok'
}

if cluster_ok; then
	echo "cluster-init: the cluster is already formed"
	exit 0
fi

# Redis 7's redis-cli resolves the host names itself (CLUSTER MEET needs addresses).
# shellcheck disable=SC2086
redis-cli --cluster create $nodes --cluster-replicas "$replicas" --cluster-yes

# Bounded wait for the gossip to settle: 60 x 1 s.
i=0
until cluster_ok; do
	i=$((i + 1))
	if [ "$i" -ge 60 ]; then
		echo "cluster-init: cluster_state is not ok after 60 s" >&2
		exit 1
	fi
	sleep 1
done
echo "cluster-init: cluster formed"
