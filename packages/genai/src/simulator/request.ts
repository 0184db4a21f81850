/** What the simulator takes from a GenerateContentRequest. */
export interface SimulatedRequest {
  /** Every text part of `contents`, joined by newlines: what the answer is derived from. */
  prompt: string
  /** `generationConfig.maxOutputTokens`, when given. */
  maxOutputTokens: number | undefined
}

/** Why a request body was refused: the message of a 400 INVALID_ARGUMENT. */
export class InvalidRequest extends Error {
  override readonly name = 'InvalidRequest'
}

/**
 * Checks a GenerateContentRequest body the way the API does for the fields the simulator reads:
 * `contents` is a non-empty array of `{ role?, parts: [...] }`, each part an object whose `text`,
 * when present, is a string; `generationConfig.maxOutputTokens`, when present, a positive integer.
 * @throws InvalidRequest with a message naming the field.
 */
export function parseRequest(body: string): SimulatedRequest {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch (err) {
    throw new InvalidRequest(`Invalid JSON payload received. ${(err as Error).message}`)
  }
  if (!isObject(json)) throw new InvalidRequest('Invalid JSON payload received. Expected an object.')
  const { contents, generationConfig } = json
  if (contents === undefined || (Array.isArray(contents) && contents.length === 0)) {
    throw new InvalidRequest('* GenerateContentRequest.contents: contents is not specified')
  }
  if (!Array.isArray(contents)) {
    throw new InvalidRequest('* GenerateContentRequest.contents: must be a list of Content objects')
  }
  const texts: string[] = []
  contents.forEach((content: unknown, i) => {
    if (!isObject(content) || !Array.isArray(content.parts) || content.parts.length === 0) {
      throw new InvalidRequest(
        `* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.`,
      )
    }
    if (content.role !== undefined && content.role !== 'user' && content.role !== 'model') {
      throw new InvalidRequest(
        `* GenerateContentRequest.contents[${i}].role: Please use a valid role: user, model.`,
      )
    }
    content.parts.forEach((part: unknown, j) => {
      if (!isObject(part)) {
        throw new InvalidRequest(`* GenerateContentRequest.contents[${i}].parts[${j}]: must be an object`)
      }
      if (part.text === undefined) return
      if (typeof part.text !== 'string') {
        throw new InvalidRequest(
          `* GenerateContentRequest.contents[${i}].parts[${j}].text: Invalid value (must be a string)`,
        )
      }
      texts.push(part.text)
    })
  })
  let maxOutputTokens: number | undefined
  if (generationConfig !== undefined) {
    if (!isObject(generationConfig)) {
      throw new InvalidRequest('* GenerateContentRequest.generation_config: must be an object')
    }
    const max = generationConfig.maxOutputTokens
    if (max !== undefined) {
      if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) {
        throw new InvalidRequest(
          '* GenerateContentRequest.generation_config.max_output_tokens: must be a positive integer',
        )
      }
      maxOutputTokens = max
    }
  }
  return { prompt: texts.join('\n'), maxOutputTokens }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
