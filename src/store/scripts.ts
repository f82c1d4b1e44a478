import { createHash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import { StoreUnavailableError } from '../errors'

/** Either client shape; every key a script touches shares one `{…}` hash slot. */
export type RedisClient = Redis | Cluster

/** A Lua script and its SHA1, computed once at start-up. */
export interface Script {
	readonly lua: string
	readonly sha: string
}

/** Wraps Lua source for `runScript`. */
export const script = (lua: string): Script => ({ lua, sha: createHash('sha1').update(lua).digest('hex') })

function isNoScript(err: unknown): boolean {
	return err instanceof Error && err.message.startsWith('NOSCRIPT')
}

/**
 * Runs a script with EVALSHA (40 bytes on the hot path), loading it with EVAL
 * on the first miss (new server, failover, SCRIPT FLUSH). Any client failure
 * becomes `StoreUnavailableError`.
 */
export async function runScript(
	client: RedisClient,
	s: Script,
	keys: string[],
	args: (string | number)[],
): Promise<unknown> {
	try {
		try {
			return await client.evalsha(s.sha, keys.length, ...keys, ...args)
		} catch (err) {
			if (!isNoScript(err)) throw err
			return await client.eval(s.lua, keys.length, ...keys, ...args)
		}
	} catch (err) {
		throw new StoreUnavailableError(err)
	}
}
