import { describe, expect, it } from 'vitest'
import { resolveGenaiOptions } from './options.js'
import { toGenerateParams } from './request.js'

describe('resolveGenaiOptions', () => {
  it('takes the environment, then the defaults; options win over both', () => {
    const env = { GEMINI_API_KEY: 'k', MODEL_ID: 'gemini-2.5-pro', GENAI_BASE_URL: 'http://127.0.0.1:9' }
    expect(resolveGenaiOptions({ env })).toEqual({
      apiKey: 'k',
      vertexai: false,
      project: undefined,
      location: undefined,
      model: 'gemini-2.5-pro',
      baseUrl: 'http://127.0.0.1:9',
    })
    expect(resolveGenaiOptions({ env: { GEMINI_API_KEY: 'k' } }).model).toBe('gemini-2.5-flash')
    expect(resolveGenaiOptions({ env, model: 'x', apiKey: 'other' })).toMatchObject({
      model: 'x',
      apiKey: 'other',
    })
    const vertex = {
      GOOGLE_GENAI_USE_VERTEXAI: 'true',
      GOOGLE_CLOUD_PROJECT: 'p',
      GOOGLE_CLOUD_LOCATION: 'europe-west4',
    }
    expect(resolveGenaiOptions({ env: vertex })).toMatchObject({
      vertexai: true,
      project: 'p',
      location: 'europe-west4',
    })
  })

  it('says which variables to set when nothing can call a model', () => {
    expect(() => resolveGenaiOptions({ env: {} })).toThrow(/set GEMINI_API_KEY/)
    expect(() => resolveGenaiOptions({ env: { GOOGLE_GENAI_USE_VERTEXAI: '1' } })).toThrow(
      /GOOGLE_CLOUD_PROJECT/,
    )
    expect(() => resolveGenaiOptions({ env: { GEMINI_API_KEY: 'k', GENAI_BASE_URL: 'nope' } })).toThrow(
      /GENAI_BASE_URL/,
    )
  })
})

describe('toGenerateParams', () => {
  it("moves generationConfig and the request's other fields into the SDK's config", () => {
    const params = toGenerateParams(
      {
        contents: [{ role: 'user', parts: [{ text: 'hi' }] }],
        systemInstruction: { parts: [{ text: 'be brief' }] },
        generationConfig: { temperature: 0.2, maxOutputTokens: 64 },
      },
      'gemini-2.5-flash',
    )
    expect(params).toEqual({
      model: 'gemini-2.5-flash',
      contents: [{ role: 'user', parts: [{ text: 'hi' }] }],
      config: { temperature: 0.2, maxOutputTokens: 64, systemInstruction: { parts: [{ text: 'be brief' }] } },
    })
    expect(toGenerateParams({ contents: 'hi', model: 'gemini-2.5-pro' }, 'd').model).toBe('gemini-2.5-pro')
  })

  it('refuses what is not a GenerateContentRequest', () => {
    expect(() => toGenerateParams('hi', 'm')).toThrow(TypeError)
    expect(() => toGenerateParams({ prompt: 'hi' }, 'm')).toThrow(/field 'prompt'/)
    expect(() => toGenerateParams({ model: 'm' }, 'm')).toThrow(/no contents/)
  })
})
