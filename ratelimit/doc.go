// Package ratelimit holds the token buckets that keep each sender number
// within what its provider allows: an adaptive bucket per sender (its tier,
// lowered when the provider throttles, recovering slowly) and a bucket per
// (sender, recipient) pair. It imports nothing of the project.
package ratelimit
