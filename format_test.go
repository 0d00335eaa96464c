package llmscope

import "testing"

func TestFormat(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{FormatCount(1750), "1.75k"},
		{FormatCount(750), "750"},
		{FormatCount(0), "0"},
		{FormatCount(12345), "12.3k"},
		{FormatCount(999), "999"},
		{FormatCount(999.9), "1k"},
		{FormatCount(4_200_000), "4.2M"},
		{FormatCount(2.5), "2.5"},
		{FormatMS(12.34), "12.3 ms"},
		{FormatMS(0.42), "0.42 ms"},
		{FormatMS(1250), "1.25 s"},
		{FormatMS(150_000), "2.5 min"},
		{FormatUSD(0.00024), "$0.00024"},
		{FormatUSD(2.4e-7), "$0.00000024"},
		{FormatUSD(12.345), "$12.35"},
		{FormatUSD(0), "$0"},
		{FormatUSD(0.1), "$0.1"},
		{FormatSig(1750, 3), "1750"},
		{FormatSig(123456, 3), "123000"},
		{FormatSig(0.000243, 2), "0.00024"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
