import { ConfigError } from './error'
import type { HostPort, RedisNatMap } from './parsers'
import type { EnvValues, EnvVar } from './schema'

// The rules between the Redis variables: one topology at a time, and each
// credential, TLS and NAT setting checked against the topology it would apply to.

/** How to reach Redis; `memory` is the embedded development store. Optional fields are absent when not configured. */
export type StoreConfig =
	| { readonly kind: 'memory' }
	| {
			readonly kind: 'redis'
			readonly url: string
			readonly username?: string
			readonly password?: string
			readonly caFile?: string
	  }
	| {
			readonly kind: 'cluster'
			readonly nodes: readonly HostPort[]
			readonly username?: string
			readonly password?: string
			readonly tls?: true
			readonly caFile?: string
			readonly natMap?: RedisNatMap
	  }
	| {
			readonly kind: 'sentinel'
			readonly sentinels: readonly HostPort[]
			readonly name: string
			readonly username?: string
			readonly password?: string
			readonly sentinelPassword?: string
			readonly tls?: true
			readonly caFile?: string
			readonly natMap?: RedisNatMap
	  }

const ONE_REDIS = 'configure one Redis: REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS'

type Topology =
	| { kind: 'memory' }
	| { kind: 'redis'; url: string; parsed: URL }
	| { kind: 'cluster'; nodes: HostPort[] }
	| { kind: 'sentinel'; sentinels: HostPort[]; name: string }

/** Which Redis to use; two of them at once is refused rather than one silently winning (it used to be the cluster). */
function topology(v: EnvValues, production: boolean): Topology {
	const url = v.REDIS_URL
	const nodes = v.REDIS_CLUSTER_NODES
	const sentinels = v.REDIS_SENTINELS
	const name = v.REDIS_SENTINEL_NAME
	if (url && nodes) throw new ConfigError('REDIS_CLUSTER_NODES', `conflicts with REDIS_URL; ${ONE_REDIS}`)
	if (url && sentinels) throw new ConfigError('REDIS_SENTINELS', `conflicts with REDIS_URL; ${ONE_REDIS}`)
	if (nodes && sentinels) throw new ConfigError('REDIS_SENTINELS', `conflicts with REDIS_CLUSTER_NODES; ${ONE_REDIS}`)
	if (name && !sentinels)
		throw new ConfigError('REDIS_SENTINEL_NAME', 'only applies with REDIS_SENTINELS, which is not set')
	if (v.REDIS_SENTINEL_PASSWORD !== undefined && !sentinels)
		throw new ConfigError('REDIS_SENTINEL_PASSWORD', 'only applies with REDIS_SENTINELS, which is not set')
	if (url) return { kind: 'redis', url, parsed: new URL(url) }
	if (nodes) return { kind: 'cluster', nodes }
	if (sentinels) {
		if (!name) throw new ConfigError('REDIS_SENTINEL_NAME', 'is required with REDIS_SENTINELS')
		return { kind: 'sentinel', sentinels, name }
	}
	if (production)
		throw new ConfigError('REDIS_URL', 'is required in production (or REDIS_CLUSTER_NODES / REDIS_SENTINELS)')
	// Each of these means the operator expected Redis; the in-memory store would quietly ignore it.
	const redisOnly: [EnvVar, boolean][] = [
		['REDIS_USERNAME', v.REDIS_USERNAME !== undefined],
		['REDIS_PASSWORD', v.REDIS_PASSWORD !== undefined],
		['REDIS_TLS', v.REDIS_TLS],
		['REDIS_CA_FILE', v.REDIS_CA_FILE !== undefined],
		['REDIS_NAT_MAP', v.REDIS_NAT_MAP !== undefined],
		['REDIS_MIN_REPLICAS_ACK', v.REDIS_MIN_REPLICAS_ACK > 0],
	]
	for (const [variable, set] of redisOnly)
		if (set) throw new ConfigError(variable, `needs Redis, but none is configured (in-memory store); ${ONE_REDIS}`)
	return { kind: 'memory' }
}

/**
 * The chosen topology with its credentials, TLS and NAT settings, each checked
 * against it. Throws `ConfigError` naming the variable to fix (and the one it
 * conflicts with).
 */
export function storeConfig(v: EnvValues, production: boolean): StoreConfig {
	const chosen = topology(v, production)
	if (chosen.kind === 'memory') return chosen
	const url = chosen.kind === 'redis' ? chosen.parsed : null
	if (url?.password && v.REDIS_PASSWORD !== undefined)
		throw new ConfigError('REDIS_PASSWORD', 'REDIS_URL carries a password too; give it in one place')
	if (url?.username && v.REDIS_USERNAME !== undefined)
		throw new ConfigError('REDIS_USERNAME', 'REDIS_URL carries a username too; give it in one place')
	// Redis authenticates an ACL user with AUTH <user> <password>; a user alone would never be used.
	if (v.REDIS_USERNAME !== undefined && v.REDIS_PASSWORD === undefined && !url?.password)
		throw new ConfigError('REDIS_USERNAME', 'needs a password too: REDIS_PASSWORD, or one in REDIS_URL')
	if (url?.protocol === 'redis:' && v.REDIS_TLS)
		throw new ConfigError('REDIS_TLS', 'with REDIS_URL, TLS is chosen by the URL: use rediss:// instead of redis://')
	const tls = url ? url.protocol === 'rediss:' : v.REDIS_TLS
	if (v.REDIS_CA_FILE !== undefined && !tls)
		throw new ConfigError('REDIS_CA_FILE', 'only applies with TLS: use a rediss:// REDIS_URL or REDIS_TLS=true')
	if (url && v.REDIS_NAT_MAP)
		throw new ConfigError('REDIS_NAT_MAP', 'only applies to REDIS_CLUSTER_NODES or REDIS_SENTINELS, not to REDIS_URL')

	// Optional fields are left out, not set to undefined, so the shape says exactly what was configured.
	const common = {
		...(v.REDIS_USERNAME !== undefined ? { username: v.REDIS_USERNAME } : {}),
		...(v.REDIS_PASSWORD !== undefined ? { password: v.REDIS_PASSWORD } : {}),
	}
	const caFile = v.REDIS_CA_FILE !== undefined ? { caFile: v.REDIS_CA_FILE } : {}
	// The URL is kept exactly as given; the credentials above are only those of the variables.
	if (chosen.kind === 'redis') return { kind: 'redis', url: chosen.url, ...common, ...caFile }
	const nodeOptions = {
		...common,
		...(tls ? { tls: true as const } : {}),
		...caFile,
		...(v.REDIS_NAT_MAP ? { natMap: v.REDIS_NAT_MAP } : {}),
	}
	if (chosen.kind === 'cluster') return { kind: 'cluster', nodes: chosen.nodes, ...nodeOptions }
	return {
		kind: 'sentinel',
		sentinels: chosen.sentinels,
		name: chosen.name,
		...nodeOptions,
		...(v.REDIS_SENTINEL_PASSWORD !== undefined ? { sentinelPassword: v.REDIS_SENTINEL_PASSWORD } : {}),
	}
}
