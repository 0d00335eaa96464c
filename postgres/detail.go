package postgres

import "llmscope"

// detailArg returns the detail column's value for c: nil (NULL) when c has
// none of its facts (llmscope.Call.DetailJSON).
func detailArg(c *llmscope.Call) (*string, error) {
	s, ok, err := c.DetailJSON()
	if !ok || err != nil {
		return nil, err
	}
	return &s, nil
}

// setDetail fills c's detail fields from the column's value (nil: NULL).
func setDetail(c *llmscope.Call, v *string) error {
	if v == nil {
		return nil
	}
	return c.SetDetailJSON(*v)
}
