import { expect, test } from 'bun:test'
import { systemClock } from '../../../src/clock'
import { createEventWriter } from '../../../src/modules/events/writer'
import { quietLog, redisForFile, uniqueKeys } from './fixtures'

// The instance's own events (unlimited tokens' downloads, denials, Cluster's handed-back entries):
// appended in batches, in order, each counted written or dropped exactly once.

const redis = await redisForFile()

function writerOn(streamKey: string) {
	const written: string[] = []
	const dropped: string[] = []
	const { log, lines } = quietLog()
	const writer = createEventWriter({
		client: redis,
		streamKey,
		maxLen: 1_000_000,
		clock: systemClock,
		log,
		written: (type) => written.push(type),
		dropped: (type) => dropped.push(type),
	})
	return { writer, written, dropped, lines }
}

test('300 events arrive in the order emitted, one stream entry each with its four fields, each counted written once', async () => {
	const { streamKey } = uniqueKeys('writer')
	const { writer, written, dropped } = writerOn(streamKey)
	for (let i = 0; i < 300; i++)
		writer.emit(i % 2 ? 'download.completed' : 'download.started', { jti: `j${i}`, user_id: 'u', filename: 'v.mp4' })
	await writer.flush()
	const entries = await redis.xrange(streamKey, '-', '+')
	expect(entries.map(([, fields]) => (JSON.parse(fields[7] ?? '{}') as { jti: string }).jti)).toEqual(
		Array.from({ length: 300 }, (_, i) => `j${i}`),
	)
	expect(entries[1]?.[1].filter((_, i) => i % 2 === 0)).toEqual(['id', 'type', 'timestamp', 'data'])
	expect(entries[1]?.[1][3]).toBe('download.completed')
	expect(written.length).toBe(300)
	expect(dropped).toEqual([])
	await redis.del(streamKey)
})

test('a stream key Redis refuses (another type): the batch is dropped and counted once, never retried', async () => {
	const { streamKey } = uniqueKeys('writer-refused')
	await redis.set(streamKey, 'not a stream')
	const { writer, written, dropped, lines } = writerOn(streamKey)
	for (let i = 0; i < 5; i++) writer.emit('download.started', { jti: `j${i}`, user_id: 'u', filename: 'v.mp4' })
	await writer.flush()
	await Bun.sleep(1200)
	await writer.flush()
	expect(dropped).toEqual(Array(5).fill('download.started'))
	expect(written).toEqual([])
	expect(lines.filter((l) => l.includes('dropped')).length).toBe(1)
	expect(await redis.get(streamKey)).toBe('not a stream')
	await redis.del(streamKey)
})
