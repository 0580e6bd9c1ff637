package queue

// MaxRetry is maxRetry, for the tests of package queue_test.
const MaxRetry = maxRetry
