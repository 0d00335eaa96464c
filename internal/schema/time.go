package schema

import (
	"math"
	"time"
)

// zeroTime is how the zero time.Time is stored, so that it reads back as the
// zero time and sorts before every real one.
const zeroTime = math.MinInt64

var (
	minTime = time.Unix(0, zeroTime+1)
	maxTime = time.Unix(0, math.MaxInt64)
)

// Nanos returns t as the stores keep a time: unix nanoseconds (an integer
// column, so both stores keep nanoseconds and order by them), clamped to
// what an int64 holds (years 1678 to 2262); the zero time is math.MinInt64.
func Nanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return zeroTime
	case t.Before(minTime):
		return zeroTime + 1
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// Time returns the time n stands for (see Nanos), in UTC.
func Time(n int64) time.Time {
	if n == zeroTime {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
