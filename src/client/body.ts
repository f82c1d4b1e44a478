import type { FileHandle } from 'node:fs/promises'
import { DownloadError } from './download-error'

/**
 * Streams a body to disk from `from`, chunk by chunk. A read error is returned
 * as `broken` (a cut to resume); more bytes than `end` throw `DownloadError`
 * `length_mismatch`; an abort of `signal` throws its reason.
 */
export async function writeBody(
	file: FileHandle,
	response: Response,
	signal: AbortSignal | undefined,
	body: { from: number; end: number | null; onWritten: (received: number) => void },
): Promise<{ received: number; broken: { reason: unknown } | null }> {
	const { from, end } = body
	let received = from
	const reader = response.body?.getReader()
	if (!reader) return { received, broken: null }
	for (;;) {
		let chunk: Awaited<ReturnType<typeof reader.read>>
		try {
			chunk = await reader.read()
		} catch (reason) {
			if (signal?.aborted) throw signal.reason
			reader.releaseLock()
			return { received, broken: { reason } }
		}
		if (chunk.done) break
		const bytes = chunk.value
		if (end !== null && received + bytes.byteLength > end) {
			await reader.cancel().catch(() => {})
			throw new DownloadError(
				'length_mismatch',
				response.status,
				`more bytes than announced (${end - from} from ${from})`,
			)
		}
		await writeAll(file, bytes, received)
		received += bytes.byteLength
		body.onWritten(received)
		signal?.throwIfAborted()
	}
	reader.releaseLock()
	return { received, broken: null }
}

async function writeAll(file: FileHandle, chunk: Uint8Array, position: number): Promise<void> {
	let done = 0
	while (done < chunk.byteLength) {
		const { bytesWritten } = await file.write(chunk, done, chunk.byteLength - done, position + done)
		done += bytesWritten
	}
}
