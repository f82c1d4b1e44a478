import type { ChainableCommander, Cluster, Redis } from 'ioredis'
import { StoreUnavailableError } from '../errors'

/** Either client shape; every key a script touches shares one `{…}` hash slot. */
export type RedisClient = Redis | Cluster

/** A Lua script, registered once per client; without `numberOfKeys` each call passes its own keys. */
export interface ScriptDefinition {
	readonly numberOfKeys?: number
	readonly lua: string
}

type Arg = string | number
/** A registered script: `run` on the client, `queue` on a pipeline (same slot, same connection). */
export interface Script {
	run(keys: readonly string[], args: readonly Arg[]): Promise<unknown>
	queue(pipeline: ChainableCommander, keys: readonly string[], args: readonly Arg[]): ChainableCommander
}

type CommandFn = (...args: Arg[]) => Promise<unknown>
type QueueFn = (...args: Arg[]) => ChainableCommander

/**
 * Registers `definitions` with ioredis's `defineCommand`, which sends EVALSHA
 * and falls back to EVAL after a flush or failover, in pipelines and on
 * Cluster alike. Failures of the client become `StoreUnavailableError`.
 */
export function defineScripts<Name extends string>(
	client: RedisClient,
	definitions: Readonly<Record<Name, ScriptDefinition>>,
): Readonly<Record<Name, Script>> {
	const out = {} as Record<Name, Script>
	for (const name of Object.keys(definitions) as Name[]) {
		const { numberOfKeys, lua } = definitions[name]
		const command = `dlg_${name}`
		client.defineCommand(command, numberOfKeys === undefined ? { lua } : { numberOfKeys, lua })
		// ioredis takes the key count as the first argument when the definition has none.
		const argv = (keys: readonly string[], args: readonly Arg[]): Arg[] =>
			numberOfKeys === undefined ? [keys.length, ...keys, ...args] : [...keys, ...args]
		out[name] = {
			async run(keys, args) {
				try {
					return await (client as unknown as Record<string, CommandFn>)[command]?.(...argv(keys, args))
				} catch (err) {
					throw new StoreUnavailableError(err)
				}
			},
			queue(pipeline, keys, args) {
				return (pipeline as unknown as Record<string, QueueFn>)[command]?.(...argv(keys, args)) ?? pipeline
			},
		}
	}
	return out
}

/** A reply as a number (RESP2 integers and RESP3 numbers alike). */
export const toInt = (v: unknown): number => (typeof v === 'number' ? v : Number(v))

/**
 * Lua counting one event in a fixed window: `key` is INCRed and, on its first
 * event (or when it lost its TTL), given `windowMs`; leaves `n` (events so
 * far) and `ttl` (ms left). Shared by the rate limiter and the issue script.
 */
export const luaWindowHit = (key: string, windowMs: string): string => `
local n = redis.call('INCR', ${key})
local ttl = redis.call('PTTL', ${key})
if ttl < 0 then
  redis.call('PEXPIRE', ${key}, ${windowMs})
  ttl = tonumber(${windowMs})
end
`
