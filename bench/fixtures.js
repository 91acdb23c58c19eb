'use strict'

// The data every scenario uses: 2 KB prompts that differ early (as real
// prompts do) and a 1 KB JSON response.

const FILLER = 'Write in a friendly, professional tone for first-time home buyers. '.repeat(40)

/** A flat (not concatenated) 2,048-character prompt, distinct for each i. */
function prompt(i) {
  const text = `Prompt #${i}: write a blog post about neighbourhood ${i % 997} and listing ${i}. ${FILLER}`
  return Buffer.from(text.slice(0, 2048)).toString()
}

/** Distinct prompts 0..count-1. */
function prompts(count) {
  return Array.from({ length: count }, (_, i) => prompt(i))
}

const RESPONSE = {
  title: 'Ten things to know before you buy your first home',
  summary: 'A short guide for first-time buyers: budgets, inspections, offers and closing costs.',
  sections: [
    { heading: 'Budget', body: 'Work out what you can afford before you start looking, including taxes and insurance.' },
    { heading: 'Inspection', body: 'Always get an independent inspection; it pays for itself more often than not.' },
    { heading: 'Offers', body: 'Know the local market: in a hot one, offers above asking are common.' },
    { heading: 'Closing', body: 'Closing costs are typically two to five percent of the price of the home.' },
    { heading: 'Moving in', body: 'Change the locks and test the smoke alarms.' },
  ],
  tags: ['real-estate', 'first-time-buyer', 'guide', 'mortgage', 'inspection'],
  meta: { words: 1450, readingMinutes: 7, model: 'claude-3-5-sonnet', generatedAt: '2026-11-28T10:00:00.000Z' },
  seo: { slug: 'first-home-guide', description: 'Everything a first-time buyer needs to know before making an offer.' },
}

const MODEL_ID = 'anthropic.claude-3-5-sonnet-20241022-v2:0'

const PRIORITIES = ['low', 'medium', 'high']

/** A small queued job, distinct for each i (100 users, the three priorities in turn). */
function job(i) {
  return { type: 'analytics', operation: 'sync', payload: { contentId: i }, userId: `user${i % 100}`, priority: PRIORITIES[i % 3], retryCount: 0, maxRetries: 3 }
}

module.exports = { prompt, prompts, job, RESPONSE, MODEL_ID, RESPONSE_BYTES: JSON.stringify(RESPONSE).length }
