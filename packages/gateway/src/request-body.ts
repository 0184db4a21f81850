/** The fields of a GenerateContentRequest the workers' Gemini handler takes. */
const KNOWN_FIELDS = new Set([
  'contents',
  'systemInstruction',
  'generationConfig',
  'safetySettings',
  'tools',
  'toolConfig',
  'cachedContent',
  'labels',
])

/**
 * Checks the body of a generate request, naming the field that is wrong; returns the job's request
 * (the body, with the model when the path names one).
 * @throws Error with a message for a 400.
 */
export function checkGenerateBody(body: unknown, model: string | undefined): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new Error('the body must be a GenerateContentRequest JSON object')
  }
  const fields = body as Record<string, unknown>
  for (const name of Object.keys(fields)) {
    if (!KNOWN_FIELDS.has(name)) {
      throw new Error(
        `unknown field '${name}' (a GenerateContentRequest has ${[...KNOWN_FIELDS].join(', ')})`,
      )
    }
  }
  if (fields.contents === undefined || fields.contents === null) throw new Error("'contents' is required")
  if (
    typeof fields.contents !== 'string' &&
    !Array.isArray(fields.contents) &&
    typeof fields.contents !== 'object'
  ) {
    throw new Error("'contents' must be a list of Content objects")
  }
  return model === undefined ? fields : { ...fields, model }
}

/** The model and method of a Gemini path's last part, `gemini-2.5-flash:streamGenerateContent`. */
export function parseModelMethod(tail: string): { model: string; method: string } | undefined {
  const colon = tail.lastIndexOf(':')
  if (colon <= 0) return undefined
  const model = tail.slice(0, colon)
  const method = tail.slice(colon + 1)
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(model)) return undefined
  return { model, method }
}
