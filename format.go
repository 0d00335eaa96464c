package llmscope

import (
	"math"
	"strconv"
	"strings"
)

// FormatSig formats v with sig significant digits in plain decimal
// notation, without trailing zeros: FormatSig(1750, 3) is "1750",
// FormatSig(0.000243, 2) is "0.00024", FormatSig(12.34, 3) is "12.3".
func FormatSig(v float64, sig int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	if v == 0 {
		return "0"
	}
	if sig < 1 {
		sig = 1
	}
	mag := int(math.Floor(math.Log10(math.Abs(v))))
	dec := sig - 1 - mag
	if dec < 0 {
		// Round to the significant digits, print as an integer.
		p := math.Pow(10, float64(-dec))
		return strconv.FormatFloat(math.Round(v/p)*p, 'f', 0, 64)
	}
	s := strconv.FormatFloat(v, 'f', dec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// FormatCount formats a count for people: integers below 1000 as
// integers ("750"), larger ones with a k, M or B suffix and three
// significant digits ("1.75k", "12.3k", "4.2M").
func FormatCount(v float64) string {
	a := math.Abs(v)
	switch {
	case a < 1000 && v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a < 999.5:
		return FormatSig(v, 3)
	}
	for _, u := range []struct {
		div    float64
		suffix string
	}{{1e9, "B"}, {1e6, "M"}, {1e3, "k"}} {
		if a >= u.div*0.9995 {
			return FormatSig(v/u.div, 3) + u.suffix
		}
	}
	return FormatSig(v, 3)
}

// FormatMS formats a duration in milliseconds for people with three
// significant digits: "0.42 ms", "12.3 ms", "1.25 s", "2.5 min".
func FormatMS(ms float64) string {
	a := math.Abs(ms)
	switch {
	case a >= 60_000:
		return FormatSig(ms/60_000, 3) + " min"
	case a >= 999.5:
		return FormatSig(ms/1000, 3) + " s"
	}
	return FormatSig(ms, 3) + " ms"
}

// FormatUSD formats an amount in US dollars for people: two decimals from
// one dollar up ("$12.35"), below that two significant digits ("$0.00024",
// "$0.00000024"), so small costs never print as zero.
func FormatUSD(v float64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	switch {
	case v == 0:
		return "$0"
	case v >= 1:
		return sign + "$" + strconv.FormatFloat(v, 'f', 2, 64)
	}
	return sign + "$" + FormatSig(v, 2)
}
