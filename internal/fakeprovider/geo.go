package fakeprovider

// country is what the doubles say about a country code.
type country struct {
	Name          string
	Continent     string // code
	ContinentName string
	Lat, Long     float64
}

// lookupCountry returns a few real countries' details; any other code gets its code as
// its name and no continent.
func lookupCountry(code string) country {
	switch code {
	case "NL":
		return country{"Netherlands", "EU", "Europe", 52.3824, 4.8995}
	case "DE":
		return country{"Germany", "EU", "Europe", 51.2993, 9.491}
	case "FR":
		return country{"France", "EU", "Europe", 48.8582, 2.3387}
	case "GB":
		return country{"United Kingdom of Great Britain and Northern Ireland", "EU", "Europe", 51.4964, -0.1224}
	case "RU":
		return country{"Russian Federation", "EU", "Europe", 55.7386, 37.6068}
	case "TR":
		return country{"Turkey", "AS", "Asia", 41.0214, 28.9948}
	case "US":
		return country{"United States of America", "NA", "North America", 37.751, -97.822}
	case "BR":
		return country{"Brazil", "SA", "South America", -22.8305, -43.2192}
	case "CN":
		return country{"China", "AS", "Asia", 34.7732, 113.722}
	case "JP":
		return country{"Japan", "AS", "Asia", 35.69, 139.69}
	case "IN":
		return country{"India", "AS", "Asia", 21.9974, 79.0011}
	case "AU":
		return country{"Australia", "OC", "Oceania", -33.494, 143.2104}
	}
	return country{Name: code}
}
