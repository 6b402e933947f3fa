package synthcloud

import (
	"fmt"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/etc"
	"github.com/bilean/bilean/importer"
)

// Resource types the synthetic cloud produces, as rule plugins know them.
const (
	ServerType     = "os.nova.server"
	VolumeType     = "os.cinder.volume"
	ImageType      = "os.glance.image"
	FloatingIPType = "os.neutron.floatingip"
)

// Policy names. The -usd twins carry the same numbers as their EUR twins.
const (
	Standard    = "standard"
	Business    = "business"
	StandardUSD = "standard-usd"
	BusinessUSD = "business-usd"
)

// Flavors are the Nova flavors servers are built from, smallest first.
var Flavors = []string{"m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"}

// Policies returns the four policies etc/policies ships, in a fixed order: standard, business,
// standard-usd, business-usd; the synthetic cloud uses exactly what a fresh installation imports.
// "standard" has no recurring fee; "business" costs 49.00 per month (prorated to the second) and
// every usage price is 10 % lower. The -usd twins have the same numbers in USD.
func Policies() []billing.Policy {
	var out []billing.Policy
	for _, name := range []string{Standard, Business, StandardUSD, BusinessUSD} {
		path := "policies/" + name + ".yaml"
		f, err := etc.Files.Open(path)
		if err != nil {
			panic(fmt.Sprintf("synthcloud: shipped policy %s: %v", path, err)) // embedded at build time
		}
		ps, err := importer.Policies("etc/"+path, f, nil)
		f.Close()
		if err != nil {
			panic(fmt.Sprintf("synthcloud: shipped policy %s: %v", path, err)) // guarded by tests
		}
		out = append(out, ps...)
	}
	return out
}

// policyFor returns the policy name of the given tier ("standard" or "business") in a currency.
func policyFor(tier, currency string) string {
	if currency == "USD" {
		return tier + "-usd"
	}
	return tier
}
