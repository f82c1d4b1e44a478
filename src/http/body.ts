import { InvalidRequestError, PayloadTooLargeError } from '../errors'

/**
 * Reads a JSON body of at most `limitBytes`, refusing a larger one with 413
 * `payload_too_large` as soon as its `Content-Length` or its bytes say so:
 * nothing beyond the limit is ever buffered. A body that is not JSON is 400.
 */
export async function readJsonBody(request: Request, limitBytes: number): Promise<unknown> {
	const declared = request.headers.get('content-length')
	if (declared !== null && Number(declared) > limitBytes) throw new PayloadTooLargeError(limitBytes)
	const chunks: Uint8Array[] = []
	let total = 0
	if (request.body) {
		const reader = request.body.getReader()
		for (;;) {
			const { done, value } = await reader.read()
			if (done) break
			total += value.byteLength
			if (total > limitBytes) {
				await reader.cancel().catch(() => {})
				throw new PayloadTooLargeError(limitBytes)
			}
			chunks.push(value)
		}
	}
	try {
		return JSON.parse(Buffer.concat(chunks).toString('utf8'))
	} catch {
		throw new InvalidRequestError('The request body is not valid JSON.')
	}
}
