import { type FileHandle, open } from 'node:fs/promises'

const CHUNK_BYTES = 256 * 1024

/**
 * Streams bytes `[start, end)` of a file, reading one chunk per pull so memory
 * stays constant and the socket's backpressure paces the disk. `onEnd` runs
 * once with the bytes handed to the HTTP layer and whether all were.
 */
export function fileStream(
	path: string,
	start: number,
	end: number,
	onEnd: (written: number, complete: boolean) => void,
): { stream: ReadableStream<Uint8Array>; abort: () => void } {
	let handle: FileHandle | null = null
	let position = start
	let finished = false

	const finish = (complete: boolean) => {
		if (finished) return
		finished = true
		handle?.close().catch(() => {})
		onEnd(position - start, complete)
	}

	const stream = new ReadableStream<Uint8Array>(
		{
			async pull(controller) {
				if (finished) return
				try {
					if (!handle) {
						const opened = await open(path, 'r')
						// The client may have gone while the file was opening: nobody else will close it,
						// and Bun kills the process when the GC finds an open FileHandle.
						if (finished) {
							await opened.close()
							return
						}
						handle = opened
					}
					const want = Math.min(CHUNK_BYTES, end - position)
					if (want <= 0) {
						controller.close()
						finish(true)
						return
					}
					const buffer = Buffer.allocUnsafe(want)
					const { bytesRead } = await handle.read(buffer, 0, want, position)
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
