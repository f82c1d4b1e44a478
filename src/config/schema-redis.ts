import { Type } from '@sinclair/typebox'
import { flag, integer, parsed, text } from './kinds'
import { hostPortList, natMap, readableFile, redisUrl } from './parsers'

const { Optional } = Type

/** The Redis the token store runs on: one server, a Cluster or Sentinels (docs/contract.md §2). In README order; schema.ts joins the groups. */
export const REDIS_VARS = {
	REDIS_URL: Optional(
		parsed(redisUrl, {
			description:
				'`redis://` or `rediss://` (TLS) URL of a single Redis. Unset in development: embedded in-memory store (warning); unset in production without Cluster or Sentinel: refuses to start',
		}),
	),
	REDIS_CLUSTER_NODES: Optional(
		parsed(hostPortList, { description: 'comma-separated `host:port` seeds: use Redis Cluster' }),
	),
	REDIS_SENTINELS: Optional(
		parsed(hostPortList, {
			description: 'comma-separated `host:port` sentinels: use Redis Sentinel (with `REDIS_SENTINEL_NAME`)',
		}),
	),
	REDIS_SENTINEL_NAME: Optional(
		text({ description: 'name of the master the sentinels watch; required with `REDIS_SENTINELS`' }),
	),
	REDIS_USERNAME: Optional(
		text({ description: 'ACL user for every topology (with `REDIS_URL` it may be in the URL instead)' }),
	),
	REDIS_PASSWORD: Optional(
		text({ secret: true, description: 'password for every topology (with `REDIS_URL` it may be in the URL instead)' }),
	),
	REDIS_TLS: flag({
		default: false,
		description: 'TLS to Cluster and Sentinel nodes (a single Redis uses TLS when `REDIS_URL` is `rediss://`)',
	}),
	REDIS_CA_FILE: Optional(
		parsed(readableFile, {
			description: 'PEM CA bundle that signs the Redis TLS certificates; with `rediss://` or `REDIS_TLS=true` only',
		}),
	),
	REDIS_SENTINEL_PASSWORD: Optional(
		text({
			secret: true,
			description: "the sentinels' own password, when it differs from the nodes'; with `REDIS_SENTINELS` only",
		}),
	),
	REDIS_NAT_MAP: Optional(
		parsed(natMap, {
			description:
				'`announced-host:port=reachable-host:port,…` for Cluster or Sentinel nodes behind NAT (Docker, Kubernetes)',
		}),
	),
	REDIS_MIN_REPLICAS_ACK: integer({
		default: 0,
		minimum: 0,
		maximum: 16,
		description:
			'writes (issue, revoke, budget take) return only after this many replicas acknowledged them (`WAIT`); a timeout is 503 and costs nothing; needs Redis',
	}),
	REDIS_KEY_PREFIX: text({
		default: 'dlg:',
		// A brace would become the cluster hash tag and break the one-slot-per-user layout.
		pattern: '^[^{}\\s]+$',
		error: 'must not contain braces or spaces',
		description: 'prefix of every key the service writes (no braces or spaces)',
	}),
}
