import type { Candidate, GenerateContentResponse, Part } from '@google/genai'

/** The fields of a GenerateContentResponse that travel as JSON (not the SDK's HTTP details or getters). */
const RESPONSE_FIELDS = [
  'candidates',
  'promptFeedback',
  'usageMetadata',
  'modelVersion',
  'responseId',
  'createTime',
  'modelStatus',
] as const

/** A GenerateContentResponse as plain JSON: what the handler yields and returns. */
export type GenaiResponse = Pick<GenerateContentResponse, (typeof RESPONSE_FIELDS)[number]>

/** The JSON fields of an SDK response, without the HTTP headers the SDK keeps beside them. */
export function plainResponse(response: GenerateContentResponse): GenaiResponse {
  const plain: Record<string, unknown> = {}
  for (const field of RESPONSE_FIELDS) {
    if (response[field] !== undefined) plain[field] = response[field]
  }
  return plain as GenaiResponse
}

/**
 * The response a stream of chunks amounts to, as `generateContent` would have answered it: per
 * candidate, the parts in order with adjacent plain text parts joined; for every other field
 * (finish reason, usage, model version, ...), the last value a chunk gave.
 */
export function aggregateChunks(chunks: readonly GenaiResponse[]): GenaiResponse {
  const candidates: Candidate[] = []
  const merged: Record<string, unknown> = { candidates }
  for (const chunk of chunks) {
    for (const [field, value] of Object.entries(chunk)) {
      if (field !== 'candidates' && value !== undefined) merged[field] = value
    }
    chunk.candidates?.forEach((candidate, position) => {
      const at = candidate.index ?? position
      const before = candidates[at]
      const { content, ...fields } = candidate
      const parts = [...(before?.content?.parts ?? [])]
      for (const part of content?.parts ?? []) appendPart(parts, part)
      // `content` first, as the API writes it; then the other fields, the latest value of each.
      const next: Candidate = {
        content: { role: content?.role ?? before?.content?.role ?? 'model', parts },
      }
      candidates[at] = Object.assign(next, definedFields({ ...before, ...fields, content: undefined }))
    })
  }
  if (candidates.length === 0) delete merged.candidates
  return merged as GenaiResponse
}

/** Appends a part, joining it to the last one when both are plain text of the same kind (thought or not). */
function appendPart(parts: Part[], part: Part): void {
  const last = parts[parts.length - 1]
  if (last && isPlainText(last) && isPlainText(part) && last.thought === part.thought) {
    parts[parts.length - 1] = { ...last, text: `${last.text}${part.text}` }
  } else {
    parts.push({ ...part })
  }
}

function isPlainText(part: Part): boolean {
  return typeof part.text === 'string' && Object.keys(part).every((k) => k === 'text' || k === 'thought')
}

function definedFields<T extends object>(fields: T): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Partial<T>
}
