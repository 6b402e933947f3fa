package synthcloud

import (
	"github.com/bilean/bilean/billing"
	"github.com/govalues/decimal"
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

// Rule specs of the "standard" price list: prices per hour (servers, floating IPs) and per
// GB-hour (volumes: size in GB; images: size in bytes, priced per GiB by the image rule).
const (
	standardServer = `flavors:
  m1.tiny: "0.0100"
  m1.small: "0.0200"
  m1.medium: "0.0400"
  m1.large: "0.0800"
  m1.xlarge: "0.1600"
`
	standardVolume     = "price_per_gb_hour: \"0.00015\"\n"
	standardImage      = "price_per_gb_hour: \"0.00010\"\n"
	standardFloatingIP = "price_per_hour: \"0.0050\"\n"
)

// Rule specs of the "business" price list: every price of "standard" less 10 %, written exactly.
const (
	businessServer = `flavors:
  m1.tiny: "0.0090"
  m1.small: "0.0180"
  m1.medium: "0.0360"
  m1.large: "0.0720"
  m1.xlarge: "0.1440"
`
	businessVolume     = "price_per_gb_hour: \"0.000135\"\n"
	businessImage      = "price_per_gb_hour: \"0.000090\"\n"
	businessFloatingIP = "price_per_hour: \"0.0045\"\n"
)

// Policies returns the four policies of the synthetic cloud, in a fixed order: standard,
// business, standard-usd, business-usd. They are the policies etc/policies ships, so a demo
// database and a fresh installation price the same way.
//
// "standard" has no recurring fee; "business" costs 49.00 per month (prorated to the second)
// and every usage price is 10 % lower. The -usd twins have the same numbers in USD.
func Policies() []billing.Policy {
	std := []billing.RuleSpec{
		{Type: ServerType, Spec: standardServer},
		{Type: VolumeType, Spec: standardVolume},
		{Type: ImageType, Spec: standardImage},
		{Type: FloatingIPType, Spec: standardFloatingIP},
	}
	biz := []billing.RuleSpec{
		{Type: ServerType, Spec: businessServer},
		{Type: VolumeType, Spec: businessVolume},
		{Type: ImageType, Spec: businessImage},
		{Type: FloatingIPType, Spec: businessFloatingIP},
	}
	fee := decimal.MustParse("49.00")
	clone := func(rs []billing.RuleSpec) []billing.RuleSpec { return append([]billing.RuleSpec(nil), rs...) }
	return []billing.Policy{
		{Name: Standard, Currency: "EUR", Description: "Pay as you go: per-second usage, no monthly fee", Fee: decimal.Zero, Rules: clone(std)},
		{Name: Business, Currency: "EUR", Description: "Business: 49.00 per month, usage prices 10 % lower", Fee: fee, Rules: clone(biz)},
		{Name: StandardUSD, Currency: "USD", Description: "Pay as you go (USD): per-second usage, no monthly fee", Fee: decimal.Zero, Rules: clone(std)},
		{Name: BusinessUSD, Currency: "USD", Description: "Business (USD): 49.00 per month, usage prices 10 % lower", Fee: fee, Rules: clone(biz)},
	}
}

// policyFor returns the policy name of the given tier ("standard" or "business") in a currency.
func policyFor(tier, currency string) string {
	if currency == "USD" {
		return tier + "-usd"
	}
	return tier
}
