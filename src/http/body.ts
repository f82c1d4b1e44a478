import { InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../errors'

/** The body media types a route may take. */
export const JSON_MEDIA_TYPE = 'application/json'
export const FORM_MEDIA_TYPE = 'application/x-www-form-urlencoded'
type BodyMediaType = typeof JSON_MEDIA_TYPE | typeof FORM_MEDIA_TYPE

/** `Content-Type: Application/JSON; charset=utf-8` → `application/json` (RFC 9110 §8.3.1: case-insensitive, parameters after `;`). */
export function mediaTypeOf(contentType: string | null): string | null {
	if (contentType === null) return null
	const type = contentType.split(';', 1)[0]?.trim().toLowerCase() ?? ''
	return type === '' ? null : type
}

/** Reads at most `limitBytes` of the body, refusing more as soon as `Content-Length` or the bytes say so. */
async function readBounded(request: Request, limitBytes: number): Promise<Buffer> {
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
	return Buffer.concat(chunks)
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** A form body as an object of its fields; a field given twice is refused (it could mean either). */
function formFields(text: string): Record<string, string> {
	const fields: Record<string, string> = {}
	for (const [name, value] of new URLSearchParams(text)) {
		if (Object.hasOwn(fields, name))
			throw new InvalidRequestError(`The form field ${name.slice(0, 40)} is given more than once.`)
		fields[name] = value
	}
	return fields
}

/**
 * Reads a body of at most `limitBytes` in one of the `accepted` media types:
 * JSON is parsed, a form becomes an object of its fields. Any other media type
 * (or none) is 415 `unsupported_media_type` before a byte is read: `text/plain`
 * is what a cross-site form sends without a CORS preflight. Over the limit is
 * 413 `payload_too_large`, nothing beyond it buffered; malformed is 400.
 */
export async function readBody(
	request: Request,
	limitBytes: number,
	accepted: readonly [BodyMediaType, ...BodyMediaType[]],
): Promise<unknown> {
	const type = mediaTypeOf(request.headers.get('content-type'))
	if (type === null || !(accepted as readonly string[]).includes(type)) throw new UnsupportedMediaTypeError(accepted)
	const bytes = await readBounded(request, limitBytes)
	let text: string
	try {
		text = utf8.decode(bytes)
	} catch {
		throw new InvalidRequestError('The request body is not valid UTF-8.')
	}
	if (type === FORM_MEDIA_TYPE) return formFields(text)
	try {
		return JSON.parse(text)
	} catch {
		throw new InvalidRequestError('The request body is not valid JSON.')
	}
}
