package meetergo

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// listKeys are the keys under which an API commonly wraps a list, tried in
// this order. meetergo documents a bare array; these are read in case it
// changes its answer.
var listKeys = []string{"data", "items", "webhooks", "results"}

// listKeyOther is the metric label of a list wrapped under another key.
const listKeyOther = "other"

// decodeList reads the answer of GET /webhooks: a bare JSON array, or an
// object that wraps it. wrappedIn is "" for a bare array, else the key
// that held it (one of listKeys, or listKeyOther). It fails on anything it
// cannot read for certain as the whole list: an answer read as "fewer
// webhooks" than exist could make the caller register a duplicate. So it
// refuses null, an object with no array or with two candidate arrays, an
// empty or object-less array under an unknown key, and any sign of paging
// (one page could hide webhooks).
func decodeList(body []byte) (items []webhookJSON, wrappedIn string, err error) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, "", errors.New("the answer is not a JSON array of webhooks")
		}
		return items, "", nil
	}
	var obj map[string]json.RawMessage
	if len(body) == 0 || body[0] != '{' || json.Unmarshal(body, &obj) != nil {
		return nil, "", errors.New("the answer is neither a JSON array of webhooks nor an object holding one")
	}
	if hint := pagingHint(obj); hint != "" {
		return nil, "", errors.New("the list answer looks paged (" + hint + "); reading one page could hide webhooks")
	}
	key := ""
	for _, k := range listKeys {
		if isArray(obj[k]) {
			if key != "" {
				return nil, "", errors.New("the list answer holds arrays under both " + key + " and " + k)
			}
			key = k
		}
	}
	label := key
	if key == "" {
		// One member holding a non-empty array of webhook objects.
		for k := range obj {
			key, label = k, listKeyOther
		}
		if len(obj) != 1 || !isArray(obj[key]) {
			return nil, "", errors.New("the answer is an object without a list of webhooks under " + strings.Join(listKeys, ", "))
		}
	}
	if err := json.Unmarshal(obj[key], &items); err != nil {
		return nil, "", errors.New("the list answer's array does not hold webhooks")
	}
	if label == listKeyOther {
		if len(items) == 0 {
			return nil, "", errors.New("the answer is an object holding an empty array under an unknown key")
		}
		for _, it := range items {
			if it.ID == "" {
				return nil, "", errors.New("the answer is an object holding an array of objects without webhook ids")
			}
		}
	}
	if items == nil {
		items = []webhookJSON{}
	}
	return items, label, nil
}

func isArray(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '['
}

// pagingHint names a sign that obj is one page of a longer list, looking at
// its members and those of the objects commonly holding paging details;
// "" if there is none. Counts equal to the items are no sign.
func pagingHint(obj map[string]json.RawMessage) string {
	n := -1
	for _, k := range listKeys {
		var items []json.RawMessage
		if json.Unmarshal(obj[k], &items) == nil && items != nil {
			n = len(items)
			break
		}
	}
	if n < 0 && len(obj) == 1 {
		for _, v := range obj {
			var items []json.RawMessage
			if json.Unmarshal(v, &items) == nil {
				n = len(items)
			}
		}
	}
	scopes := []map[string]json.RawMessage{obj}
	for k, v := range obj {
		switch strings.ToLower(k) {
		case "meta", "pagination", "paging", "page", "pageinfo", "links":
			var inner map[string]json.RawMessage
			if json.Unmarshal(v, &inner) == nil {
				scopes = append(scopes, inner)
			}
		}
	}
	for _, scope := range scopes {
		for k, v := range scope {
			if v = bytes.TrimSpace(v); bytes.Equal(v, []byte("null")) {
				continue
			}
			var num float64
			var flag bool
			var text string
			isNum, isBool, isText := json.Unmarshal(v, &num) == nil, json.Unmarshal(v, &flag) == nil, json.Unmarshal(v, &text) == nil
			switch strings.ToLower(k) {
			case "total", "totalcount", "totalitems", "totalresults", "count":
				if isNum && n >= 0 && num > float64(n) {
					return k + " exceeds the items sent"
				}
			case "totalpages", "pagecount", "pages", "lastpage":
				if isNum && num > 1 {
					return k + " is more than one"
				}
			case "hasmore", "has_more", "hasnextpage", "hasnext", "more":
				if isBool && flag {
					return k + " is true"
				}
			case "next", "nextcursor", "next_cursor", "nextpage", "next_page", "nextpagetoken", "next_page_token":
				if (isText && strings.TrimSpace(text) != "") || isNum {
					return k + " is set"
				}
			}
		}
	}
	return ""
}
