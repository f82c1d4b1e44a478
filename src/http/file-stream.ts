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

/** Where a counted stream reads from: an already opened file (storage's handle). */
export interface ByteSource {
	/** Reads up to `length` bytes at `position` into `buffer`; resolves with the count (0 at end of file). */
	read(buffer: Uint8Array, length: number, position: number): Promise<number>
}

/**
 * Streams bytes `[start, end)` of an opened file, reading one chunk per pull
 * so memory stays constant and the socket's backpressure paces the disk. It
 * never sends more than `end - start` bytes (a file that grew is cut) and ends
 * with an error as soon as the file turns out shorter (one that shrank).
 * `onEnd` runs once with the bytes handed to the HTTP layer and whether all
 * were; the caller closes the file there.
 */
export function fileStream(
	source: ByteSource,
	start: number,
	end: number,
	onEnd: (written: number, complete: boolean) => void,
): { stream: ReadableStream<Uint8Array>; abort: () => void } {
	let position = start
	let finished = false
	// Small files go out in one read; long downloads adapt from there.
	let chunk = START_CHUNK
	let lastPull = 0

	const finish = (complete: boolean) => {
		if (finished) return
		finished = true
		onEnd(position - start, complete)
	}

	const stream = new ReadableStream<Uint8Array>(
		{
			async pull(controller) {
				if (finished) return
				try {
					const now = performance.now()
					if (lastPull > 0) {
						const gap = now - lastPull
						// Pulls come back to back while the socket buffers fill, whatever the
						// client's speed, so growth waits until that first stretch is sent.
						if (gap < FAST_PULL_MS && position - start >= WARMUP_BYTES) chunk = Math.min(MAX_CHUNK, chunk * 2)
						else if (gap > SLOW_PULL_MS) chunk = Math.max(MIN_CHUNK, chunk / 2)
					}
					lastPull = now
					const want = Math.min(chunk, end - position)
					if (want <= 0) {
						controller.close()
						finish(true)
						return
					}
					const buffer = Buffer.allocUnsafe(want)
					const bytesRead = await source.read(buffer, want, position)
					if (finished) return
					// The file shrank under us: the promised length can no longer be met.
					if (bytesRead === 0) throw new Error('file ended before the promised length')
					position += bytesRead
					controller.enqueue(buffer.subarray(0, bytesRead))
					if (position >= end) {
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
