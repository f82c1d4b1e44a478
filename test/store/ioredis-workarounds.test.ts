import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { Socket } from 'bun'
import { loadConfig } from '../../src/config'
import { COMMAND_TIMEOUT_MS, createRedisClient, waitReady } from '../../src/store/connect'
import type { RedisClient } from '../../src/store/scripts'
import { TEST_SECRET } from '../support/helpers'
import { parse } from '../support/resp'

// The workarounds of src/store/ioredis-workarounds.ts that can be pinned
// without a real topology. The Sentinel ones are pinned by
// test/topology/sentinel.test.ts (scripted sentinels).

/** A bulk string, an integer or an array of them, in RESP2. */
type Out = string | number | readonly Out[]
const resp = (v: Out): string =>
	typeof v === 'number'
		? `:${v}\r\n`
		: typeof v === 'string'
			? `$${Buffer.byteLength(v)}\r\n${v}\r\n`
			: `*${v.length}\r\n${v.map(resp).join('')}`

/** Redis Cluster's hash slot of `key` (CRC16/XMODEM of its hash tag, mod 16384). */
function slotOf(key: string): number {
	const open = key.indexOf('{')
	const close = key.indexOf('}', open + 1)
	const tag = open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key
	let crc = 0
	for (const byte of Buffer.from(tag)) {
		crc ^= byte << 8
		for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
	}
	return crc % 16384
}

/**
 * A one-shard "cluster": `primary` owns every slot, `replica` serves none
 * (it redirects with MOVED, as a replica does). After `restart()`, the primary
 * drops its connections and from then on answers its handshake's INFO with
 * `loading:1`, as a node loading a large dataset does: ioredis keeps its new
 * connection in the handshake, ready check after ready check, each answered,
 * none timing out, while the cluster as a whole stays ready.
 */
function startCluster(): { readonly port: number; restart(): void; stop(): void } {
	const ports = { primary: 0, replica: 0 }
	let loading = false
	const primarySockets = new Set<Socket<{ buf: Buffer }>>()
	const node = (role: 'primary' | 'replica') =>
		Bun.listen<{ buf: Buffer }>({
			hostname: '127.0.0.1',
			port: 0,
			socket: {
				open(socket) {
					socket.data = { buf: Buffer.alloc(0) }
					if (role === 'primary') primarySockets.add(socket)
				},
				close(socket) {
					primarySockets.delete(socket)
				},
				data(socket: Socket<{ buf: Buffer }>, chunk) {
					socket.data.buf = Buffer.concat([socket.data.buf, chunk])
					for (;;) {
						const parsed = parse(socket.data.buf, 0)
						if (!parsed) return
						socket.data.buf = socket.data.buf.subarray(parsed.end)
						const args = Array.isArray(parsed.value) ? parsed.value.map(String) : []
						const [cmd = '', sub = ''] = args.map((a) => a.toUpperCase())
						if (cmd === 'CLUSTER' && sub === 'SLOTS')
							socket.write(
								resp([
									[
										0,
										16383,
										['127.0.0.1', ports.primary, 'primary-node'],
										['127.0.0.1', ports.replica, 'replica-node'],
									],
								]),
							)
						else if (cmd === 'CLUSTER' && sub === 'INFO') socket.write(resp('cluster_state:ok\r\n'))
						else if (cmd === 'INFO')
							socket.write(
								resp(role === 'primary' && loading ? 'loading:1\r\nloading_eta_seconds:1\r\n' : 'loading:0\r\n'),
							)
						else if (cmd === 'PING') socket.write('+PONG\r\n')
						else if (cmd === 'GET' && role === 'replica')
							socket.write(`-MOVED ${slotOf(args[1] ?? '')} 127.0.0.1:${ports.primary}\r\n`)
						else if (cmd === 'GET') socket.write('$-1\r\n')
						else socket.write('+OK\r\n')
					}
				},
			},
		})
	const primary = node('primary')
	const replica = node('replica')
	ports.primary = primary.port
	ports.replica = replica.port
	return {
		port: primary.port,
		restart() {
			loading = true
			for (const socket of primarySockets) socket.end()
		},
		stop() {
			primary.stop(true)
			replica.stop(true)
		},
	}
}

describe('budgetFromEntry: a Cluster command settles within COMMAND_TIMEOUT_MS, retries included', () => {
	let cluster: ReturnType<typeof startCluster>
	let client: RedisClient

	beforeAll(async () => {
		cluster = startCluster()
		const config = loadConfig({
			JWT_SECRET: TEST_SECRET,
			REDIS_CLUSTER_NODES: `127.0.0.1:${cluster.port}`,
		})
		const built = createRedisClient(config)
		if (!built) throw new Error('no client')
		client = built
		client.on('error', () => {})
		client.on('node error', () => {})
		await waitReady(client, 5000)
	})
	afterAll(() => {
		client?.disconnect()
		cluster?.stop()
	})

	test("commands to a node stuck in its handshake fail after ~1 s, not after ioredis' 16 retries (~1.6 s)", async () => {
		const key = '{u}:k'
		expect(await client.get(key)).toBeNull()
		cluster.restart()
		await Bun.sleep(100)
		const timed = async () => {
			const started = performance.now()
			const outcome = await client.get(key).then(
				() => 'ok',
				(err: unknown) => (err instanceof Error ? err.message : String(err)),
			)
			return { outcome, ms: Math.round(performance.now() - started) }
		}
		// The first command opens the new connection and waits in its queue (ioredis arms the
		// timeout there); the next ones find it connecting and never reach a node: ioredis
		// retries them every 100 ms, 16 times, without a timeout of its own.
		const first = timed()
		await Bun.sleep(100)
		const all = [await first, ...(await Promise.all([timed(), Bun.sleep(200).then(timed)]))]
		console.log(
			`[ioredis-workarounds] commands to a loading cluster primary failed after ${all.map((r) => r.ms).join(', ')} ms`,
		)
		// Failed (how ioredis words it depends on where the command was when time ran out), in time.
		const settled = all.map((r) => ({ failed: r.outcome !== 'ok', withinBudget: r.ms <= COMMAND_TIMEOUT_MS + 150 }))
		expect(settled).toEqual(all.map(() => ({ failed: true, withinBudget: true })))
	})
})
