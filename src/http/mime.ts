// A Map, not an object literal: `x.constructor` must not find Object.prototype members.
const TYPES = new Map<string, string>(
	Object.entries({
		mp4: 'video/mp4',
		m4v: 'video/x-m4v',
		mov: 'video/quicktime',
		qt: 'video/quicktime',
		webm: 'video/webm',
		mkv: 'video/x-matroska',
		avi: 'video/x-msvideo',
		wmv: 'video/x-ms-wmv',
		flv: 'video/x-flv',
		mpg: 'video/mpeg',
		mpeg: 'video/mpeg',
		ts: 'video/mp2t',
		m2ts: 'video/mp2t',
		'3gp': 'video/3gpp',
		'3g2': 'video/3gpp2',
		ogv: 'video/ogg',
		m3u8: 'application/vnd.apple.mpegurl',
		mpd: 'application/dash+xml',
		mp3: 'audio/mpeg',
		m4a: 'audio/mp4',
		aac: 'audio/aac',
		wav: 'audio/wav',
		ogg: 'audio/ogg',
		opus: 'audio/opus',
		flac: 'audio/flac',
		jpg: 'image/jpeg',
		jpeg: 'image/jpeg',
		png: 'image/png',
		gif: 'image/gif',
		webp: 'image/webp',
		srt: 'application/x-subrip',
		vtt: 'text/vtt',
		pdf: 'application/pdf',
		zip: 'application/zip',
		json: 'application/json',
		txt: 'text/plain; charset=utf-8',
	}),
)

/** The Content-Type for a file name by its extension; `application/octet-stream` when unknown. */
export function contentTypeFor(filename: string): string {
	const dot = filename.lastIndexOf('.')
	if (dot < 0) return 'application/octet-stream'
	return TYPES.get(filename.slice(dot + 1).toLowerCase()) ?? 'application/octet-stream'
}
