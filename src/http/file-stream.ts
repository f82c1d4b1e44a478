import type { RangeReader } from '../storage/types'

// Bun's HTTP sink keeps several chunks of a stream body per connection, so
// the chunk size sets the memory of slow clients and the speed of fast ones.
// It adapts: doubling while the next pull comes quickly (fast reader), halving
// while pulls are far apart (slow reader). Measured with 100 clients at 1 MB/s:
// fixed 256 KiB chunks peaked at 280 MiB RSS, fixed 16 KiB at 115 MiB but cut
// 1 GiB throughput to a sixth. Growth waits for WARMUP_BYTES: until the
// socket buffers are full (on loopback they take up to ~16 MiB per connection)
// every client looks fast, and slow ones grew to 512 KiB chunks (180 MiB peak;
// 130 MiB with the longer warm-up, 1 GiB throughput unchanged).
const MIN_CHUNK = 16 * 1024
const START_CHUNK = 64 * 1024
/** Bodies up to this size are read and handed to the socket in one go. */
export const SINGLE_READ_BYTES = START_CHUNK
const MAX_CHUNK = 512 * 1024
const FAST_PULL_MS = 2
const SLOW_PULL_MS = 20
const WARMUP_BYTES = 16 * 1024 * 1024

/** A paced body's chunks are at most a tenth of a second of its rate, so it flows evenly rather than in bursts. */
const PACE_SLICE_S = 0.1

/**
 * Streams `length` bytes from `reader`, one chunk per pull, so memory stays
 * constant and the socket's backpressure paces the source. It never sends
 * more than `length` bytes and ends with an error as soon as the source does
 * (a file that shrank, a bucket that failed). With `rate`, the body is paced
 * to that many bytes per second: a pull waits until its chunk is due, and
 * reads nothing meanwhile, so a paced client holds no more than a slow one.
 * `onEnd` runs once with the bytes handed to the HTTP layer and whether all
 * were; `abort` (the client went away) ends it and cancels the reader.
 */
export function countedStream(
	reader: RangeReader,
	length: number,
	onEnd: (written: number, complete: boolean) => void,
	options: { readonly rate?: number | undefined } = {},
): { stream: ReadableStream<Uint8Array>; abort: () => void } {
	let written = 0
	let finished = false
	// Small bodies go out in one read; long downloads adapt from there.
	let chunk = START_CHUNK
	let lastPull = 0
	const rate = options.rate
	const paceChunk = rate === undefined ? MAX_CHUNK : Math.max(MIN_CHUNK, Math.floor(rate * PACE_SLICE_S))
	const startedMs = performance.now()
	let wake: (() => void) | null = null
	let timer: ReturnType<typeof setTimeout> | undefined
	/** Waits until `written` more bytes are due at `rate` (the first chunk goes at once); wakes early on abort. */
	const due = (): Promise<void> | null => {
		if (rate === undefined) return null
		const dueMs = startedMs + ((written - Math.min(written, paceChunk)) / rate) * 1000
		const waitMs = dueMs - performance.now()
		if (waitMs <= 1) return null
		return new Promise((resolve) => {
			wake = resolve
			timer = setTimeout(resolve, waitMs)
		})
	}

	const finish = (complete: boolean) => {
		if (finished) return
		finished = true
		clearTimeout(timer)
		wake?.()
		if (!complete) reader.cancel()
		onEnd(written, complete)
	}

	const stream = new ReadableStream<Uint8Array>(
		{
			async pull(controller) {
				if (finished) return
				try {
					const waiting = due()
					if (waiting !== null) {
						await waiting
						if (finished) return
					}
					const now = performance.now()
					if (lastPull > 0) {
						const gap = now - lastPull
						// Pulls come back to back while the socket buffers fill, whatever the
						// client's speed, so growth waits until that first stretch is sent.
						if (gap < FAST_PULL_MS && written >= WARMUP_BYTES) chunk = Math.min(MAX_CHUNK, chunk * 2)
						else if (gap > SLOW_PULL_MS) chunk = Math.max(MIN_CHUNK, chunk / 2)
					}
					lastPull = now
					const want = Math.min(chunk, paceChunk, length - written)
					const bytes = want > 0 ? await reader.read(want) : null
					if (finished) return
					if (bytes === null) {
						// The source says the range is done: it must be, or the promised length is broken.
						if (written < length) throw new Error('the source ended before the promised length')
						controller.close()
						finish(true)
						return
					}
					written += bytes.byteLength
					controller.enqueue(bytes)
					if (written >= length) {
						controller.close()
						finish(true)
					}
				} catch (err) {
					const wasFinished = finished
					finish(false)
					if (!wasFinished) controller.error(err)
				}
			},
			cancel() {
				finish(false)
			},
		},
		{ highWaterMark: 0 },
	)
	return { stream, abort: () => finish(false) }
}
