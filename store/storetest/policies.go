package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
)

func init() {
	register(
		Case{"PolicyVersionsAddRuleAndRemoveRuleMakeNewVersions", testPolicyVersionsAddRemoveRule},
		Case{"PolicyVersionsEffectiveTimesIncrease", testPolicyVersionsOrder},
		Case{"PolicyVersionsReimportIsNoopAndKeepsFeeFields", testPolicyVersionsReimport},
		Case{"SubscriptionChangeEndsTheOldAtTheSecond", testSubscriptionChange},
		Case{"SubscriptionRangesAreTheLiveFeeRanges", testSubscriptionRanges},
		Case{"DiscountsValidatedAndFilteredByWindow", testDiscounts},
		Case{"CreditNotesAreGaplessAndLinkTheVoidedInvoice", testCreditNotes},
		Case{"RegenerationIssuesCreditNoteInTheSameTransaction", testRegenerationCreditNote},
		Case{"CustomerRegionRoundTrips", testCustomerRegion},
		Case{"MeterRulesAreKeyedByMeter", testMeterRulesKeyedByMeter},
	)
}

var serverRule = billing.RuleSpec{Type: "os.nova.server", Spec: "flavors:\n  m1.small: \"0.02\"\n"}

func testPolicyVersionsAddRemoveRule(t *testing.T, st store.Store) {
	pv := capability[store.PolicyVersions](t, st)
	if err := st.PutPolicies(ctx, []billing.Policy{{Name: "basic", Currency: "EUR", Fee: dec("10.00"), FeeTiming: billing.FeeAdvance,
		Rules: []billing.RuleSpec{serverRule}}}); err != nil {
		t.Fatal(err)
	}
	vol := billing.RuleSpec{Type: "os.cinder.volume", Spec: "price_per_gb_hour: \"0.0001\"\n"}
	at := time.Date(2026, 10, 15, 12, 0, 0, 0, time.UTC)
	v2, err := pv.AddRule(ctx, "basic", vol, at)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version != 2 || !v2.EffectiveFrom.Equal(at) || len(v2.Rules) != 2 || v2.Fee.String() != "10.00" || v2.Timing() != billing.FeeAdvance {
		t.Fatalf("AddRule → %+v, want version 2 from %s with both rules and the fee kept", v2, at)
	}
	v3, err := pv.RemoveRule(ctx, "basic", "os.nova.server", at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if v3.Version != 3 || !reflect.DeepEqual(v3.Rules, []billing.RuleSpec{vol}) {
		t.Fatalf("RemoveRule → %+v", v3)
	}
	if _, err := pv.RemoveRule(ctx, "basic", "os.nova.server", at.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removing a rule the policy lacks: err %v, want ErrNotFound", err)
	}
	if _, err := pv.AddRule(ctx, "nope", vol, at); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AddRule to an unknown policy: err %v, want ErrNotFound", err)
	}
	vs, err := pv.PolicyHistory(ctx, "basic")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 || !vs[0].EffectiveFrom.IsZero() || len(vs[0].Rules) != 1 || vs[0].Rules[0] != serverRule {
		t.Fatalf("versions = %+v: version 1 must stay as it was", vs)
	}
	latest, err := st.Policies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := latest["basic"]; got.Version != 3 || len(got.Rules) != 1 {
		t.Fatalf("Policies()[basic] = %+v, want the latest version 3", got)
	}
}

func testPolicyVersionsOrder(t *testing.T, st store.Store) {
	pv := capability[store.PolicyVersions](t, st)
	oct := day(10, 1)
	if _, err := pv.AddPolicyVersion(ctx, billing.Policy{Name: "p", Currency: "EUR", EffectiveFrom: oct}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    billing.Policy
	}{
		{"same time", billing.Policy{Name: "p", Currency: "EUR", EffectiveFrom: oct}},
		{"earlier", billing.Policy{Name: "p", Currency: "EUR", EffectiveFrom: day(9, 1)}},
		{"since ever", billing.Policy{Name: "p", Currency: "EUR"}},
	} {
		if _, err := pv.AddPolicyVersion(ctx, tc.p); err == nil {
			t.Errorf("%s: a version effective %v after one effective %v was accepted", tc.name, tc.p.EffectiveFrom, oct)
		}
	}
	if _, err := pv.AddPolicyVersion(ctx, billing.Policy{Name: "p", Currency: "USD", EffectiveFrom: day(11, 1)}); err == nil {
		t.Error("a version in another currency was accepted")
	}
	if _, err := pv.AddPolicyVersion(ctx, billing.Policy{Name: "p", Currency: "EUR", EffectiveFrom: day(11, 1), FeeInterval: "weekly"}); err == nil {
		t.Error("fee_interval weekly was accepted")
	}
	v, err := pv.AddPolicyVersion(ctx, billing.Policy{Name: "p", Currency: "EUR", EffectiveFrom: day(11, 1)})
	if err != nil || v.Version != 2 {
		t.Fatalf("a later version: %+v, %v", v, err)
	}
}

func testPolicyVersionsReimport(t *testing.T, st store.Store) {
	pv := capability[store.PolicyVersions](t, st)
	file := []billing.Policy{
		{Name: "pro", Currency: "EUR", Fee: dec("62.00"), FeeInterval: billing.FeeYearly, FeeTiming: billing.FeeAdvance,
			Included: map[string]decimal.Decimal{"network.outgoing.bytes": dec("10")}, Rules: []billing.RuleSpec{serverRule}},
		{Name: "pro", Currency: "EUR", Fee: dec("70.00"), EffectiveFrom: day(11, 1), FeeInterval: billing.FeeYearly, FeeTiming: billing.FeeAdvance},
	}
	for range 2 { // the second import changes nothing
		if err := st.PutPolicies(ctx, file); err != nil {
			t.Fatal(err)
		}
	}
	vs, err := pv.PolicyHistory(ctx, "pro")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 {
		t.Fatalf("versions after importing twice = %d, want 2: %+v", len(vs), vs)
	}
	v1 := vs[0]
	if v1.Version != 1 || v1.Interval() != billing.FeeYearly || v1.Timing() != billing.FeeAdvance ||
		v1.Included["network.outgoing.bytes"].String() != "10" || v1.Fee.String() != "62.00" {
		t.Fatalf("version 1 = %+v", v1)
	}
	if vs[1].Fee.String() != "70.00" || !vs[1].EffectiveFrom.Equal(day(11, 1)) {
		t.Fatalf("version 2 = %+v", vs[1])
	}
	// A correction of version 1 (same effective time) replaces it in place.
	file[0].Fee = dec("60.00")
	if err := st.PutPolicies(ctx, file[:1]); err != nil {
		t.Fatal(err)
	}
	vs, _ = pv.PolicyHistory(ctx, "pro")
	if len(vs) != 2 || vs[0].Fee.String() != "60.00" {
		t.Fatalf("after correcting version 1: %+v", vs)
	}
	all, err := pv.PolicyVersions(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("all versions: %d, %v", len(all), err)
	}
}

func testSubscriptionChange(t *testing.T, st store.Store) {
	sc := capability[store.SubscriptionChanges](t, st)
	seed(t, st)
	if err := st.PutPolicies(ctx, []billing.Policy{{Name: "basic", Currency: "EUR"}, {Name: "pro", Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddSubscriptions(ctx, []billing.Subscription{{CustomerID: "c1", Policy: "basic", Start: day(1, 1)}}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 10, 15, 12, 0, 0, 0, time.UTC)
	sub, err := sc.ChangeSubscription(ctx, "c1", "pro", at)
	if err != nil {
		t.Fatal(err)
	}
	if sub.ID == 0 || sub.Policy != "pro" || !sub.Start.Equal(at) || !sub.End.IsZero() {
		t.Fatalf("new subscription = %+v", sub)
	}
	subs, err := st.Subscriptions(ctx, []string{"c1"}, month(10))
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 2 || subs[0].Policy != "basic" || !subs[0].End.Equal(at) || subs[1].Policy != "pro" {
		t.Fatalf("subscriptions = %+v, want basic until %s then pro", subs, at)
	}
	cancel := at.Add(5*24*time.Hour + 3*time.Second)
	ended, err := sc.CancelSubscription(ctx, "c1", cancel)
	if err != nil || ended.ID != sub.ID || !ended.End.Equal(cancel) {
		t.Fatalf("cancel → %+v, %v", ended, err)
	}
	if _, err := sc.CancelSubscription(ctx, "c1", cancel.Add(time.Second)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cancel with none in force: %v, want ErrNotFound", err)
	}
	if _, err := sc.ChangeSubscription(ctx, "c1", "nope", cancel); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("change to an unknown policy: %v, want ErrNotFound", err)
	}
}

func testSubscriptionRanges(t *testing.T, st store.Store) {
	sc := capability[store.SubscriptionChanges](t, st)
	seed(t, st)
	subs, err := st.AddSubscriptions(ctx, []billing.Subscription{{CustomerID: "c1", Policy: "basic", Start: day(1, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	res := subs[0].ResourceID()
	in := inv("c1", month(10),
		invoice.BilledRange{ResourceID: res, ResourceType: billing.SubscriptionType, Kind: invoice.Charge, Range: rng(day(10, 1), day(12, 1))},
		invoice.BilledRange{ResourceID: res, ResourceType: billing.SubscriptionType, Kind: invoice.Credited, Range: rng(day(11, 20), day(12, 1))},
		charge("vm-1", month(10)))
	mustFinalize(t, st, in)
	got, err := sc.SubscriptionRanges(ctx, []string{"c1", "c2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("SubscriptionRanges = %+v, want only %s", got, res)
	}
	wantSet(t, "charged", got[res].Charged, rng(day(10, 1), day(12, 1)))
	wantSet(t, "credited", got[res].Credited, rng(day(11, 20), day(12, 1)))
	if err := st.VoidInvoice(ctx, in.Number, "test"); err != nil {
		t.Fatal(err)
	}
	got, _ = sc.SubscriptionRanges(ctx, []string{"c1"})
	if len(got) != 0 {
		t.Fatalf("after void: %+v, want none", got)
	}
}

func testDiscounts(t *testing.T, st store.Store) {
	ds := capability[store.Discounts](t, st)
	seed(t, st)
	good := []billing.Discount{
		{CustomerID: "c1", Scope: billing.DiscountInvoice, Percent: dec("0.10"), Start: day(10, 1), End: day(11, 1), Reason: "launch"},
		{CustomerID: "c1", Scope: billing.DiscountRule, RuleType: "os.nova.server", Amount: dec("5.00"), Currency: "EUR", Start: day(12, 1)},
		{CustomerID: "c2", Scope: billing.DiscountLine, ResourceID: "vm-1", Percent: dec("1"), Start: day(9, 1)},
	}
	stored, err := ds.AddDiscounts(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if stored[0].ID == 0 || stored[1].ID == stored[0].ID {
		t.Fatalf("ids not set: %+v", stored)
	}
	bad := []billing.Discount{
		{CustomerID: "c1", Scope: "customer", Percent: dec("0.1"), Start: day(1, 1)},
		{CustomerID: "c1", Scope: billing.DiscountInvoice, Percent: dec("0.1"), Amount: dec("1"), Currency: "EUR", Start: day(1, 1)},
		{CustomerID: "c1", Scope: billing.DiscountInvoice, Percent: dec("1.5"), Start: day(1, 1)},
		{CustomerID: "c1", Scope: billing.DiscountInvoice, Amount: dec("1"), Currency: "USD", Start: day(1, 1)},
		{CustomerID: "c1", Scope: billing.DiscountRule, Percent: dec("0.1"), Start: day(1, 1)},
		{CustomerID: "c1", Scope: billing.DiscountInvoice, Percent: dec("0.1"), Start: day(2, 1), End: day(1, 1)},
		{CustomerID: "zz", Scope: billing.DiscountInvoice, Percent: dec("0.1"), Start: day(1, 1)},
	}
	for i, d := range bad {
		if _, err := ds.AddDiscounts(ctx, []billing.Discount{d}); err == nil {
			t.Errorf("bad[%d] %+v accepted", i, d)
		}
	}
	for _, tc := range []struct {
		r    interval.Range
		want []int64
	}{
		{month(10), []int64{stored[0].ID, stored[2].ID}},
		{month(11), []int64{stored[2].ID}},
		{month(12), []int64{stored[1].ID, stored[2].ID}},
	} {
		got, err := ds.Discounts(ctx, []string{"c1", "c2"}, tc.r)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, d := range got {
			ids = append(ids, d.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
			t.Errorf("Discounts(%s) = %v, want %v", tc.r, ids, tc.want)
		}
	}
}

func cnFmt(series string, seq int64) string { return fmt.Sprintf("%s%06d", series, seq) }

func testCreditNotes(t *testing.T, st store.Store) {
	cns := capability[store.CreditNotes](t, st)
	seed(t, st)
	n := store.CreditNoteNumbering{Series: "CN-2026-", Format: cnFmt}
	a := mustFinalize(t, st, inv("c1", month(9), charge("vm-1", month(9))))
	b := mustFinalize(t, st, inv("c2", month(9), charge("vm-2", month(9))))
	cn1, err := cns.IssueCreditNote(ctx, a, "wrong flavor", n)
	if err != nil {
		t.Fatal(err)
	}
	if cn1.Number != "CN-2026-000001" || cn1.Invoice != a || cn1.Total.String() != "-1.20" || cn1.Tax.String() != "-0.20" {
		t.Fatalf("credit note = %+v, want CN-2026-000001 for %s, total -1.20", cn1, a)
	}
	if _, err := cns.IssueCreditNote(ctx, a, "again", n); err == nil {
		t.Fatal("a second credit note for the same invoice was issued")
	}
	if _, err := cns.IssueCreditNote(ctx, "T-2026-9999", "none", n); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown invoice: %v", err)
	}
	cn2, err := cns.IssueCreditNote(ctx, b, "duplicate", n)
	if err != nil || cn2.Number != "CN-2026-000002" {
		t.Fatalf("second credit note = %+v, %v: the series must be gapless after a refusal", cn2, err)
	}
	voided, err := st.GetInvoice(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if voided.Status != invoice.Void || voided.CreditNote != cn1.Number || voided.VoidReason != "wrong flavor" {
		t.Fatalf("voided invoice: status %s credit note %q reason %q", voided.Status, voided.CreditNote, voided.VoidReason)
	}
	// Its ranges are released: the same range can be billed again.
	mustFinalize(t, st, inv("c1", month(9), charge("vm-1", month(9))))
	got, err := cns.GetCreditNote(ctx, cn1.Number)
	if err != nil || got.Invoice != a || got.Currency != "EUR" || got.Subtotal.String() != "-1.00" {
		t.Fatalf("GetCreditNote = %+v, %v", got, err)
	}
	list, err := cns.ListCreditNotes(ctx, "")
	if err != nil || len(list) != 2 || list[0].Number != cn2.Number {
		t.Fatalf("ListCreditNotes = %+v, %v", list, err)
	}
}

func testRegenerationCreditNote(t *testing.T, st store.Store) {
	cns := capability[store.CreditNotes](t, st)
	seed(t, st)
	old := mustFinalize(t, st, inv("c1", month(10), charge("vm-1", month(10))))
	fresh := inv("c1", month(10), charge("vm-1", month(10)))
	n := store.CreditNoteNumbering{Series: "CN-2026-", Format: cnFmt}
	// A refused regeneration (a bad range) uses no credit-note number.
	bad := inv("c1", month(10), charge("vm-1", month(10)), charge("vm-1", rng(day(10, 5), day(10, 6))))
	bad.Ranges = append(bad.Ranges, invoice.BilledRange{ResourceID: "vm-2", Kind: "bogus", Range: month(10)})
	if err := st.Finalize(ctx, store.FinalizeRequest{Invoice: bad, Series: "2026", NumberFormat: numFmt, Replaces: old, CreditNote: n}); err == nil {
		t.Fatal("a bad regeneration was accepted")
	}
	if err := st.Finalize(ctx, store.FinalizeRequest{Invoice: fresh, Series: "2026", NumberFormat: numFmt, Replaces: old, CreditNote: n}); err != nil {
		t.Fatal(err)
	}
	voided, err := st.GetInvoice(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if voided.CreditNote != "CN-2026-000001" || voided.ReplacedBy != fresh.Number {
		t.Fatalf("old invoice: credit note %q replaced by %q", voided.CreditNote, voided.ReplacedBy)
	}
	cn, err := cns.GetCreditNote(ctx, voided.CreditNote)
	if err != nil {
		t.Fatal(err)
	}
	if cn.Invoice != old || cn.ReplacedBy != fresh.Number {
		t.Fatalf("credit note %+v: want the chain %s → %s → %s", cn, old, cn.Number, fresh.Number)
	}
}

func testCustomerRegion(t *testing.T, st store.Store) {
	c := billing.Customer{ID: "r1", Currency: "CHF", Region: "CH", Status: billing.Active}
	if err := st.PutCustomers(ctx, []billing.Customer{c}); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetCustomers(ctx, []string{"r1"})
	if err != nil || len(got) != 1 || got[0].Region != "CH" {
		t.Fatalf("GetCustomers = %+v, %v", got, err)
	}
}

// testMeterRulesKeyedByMeter: a policy prices many meters, one meter rule each; add-rule replaces
// and remove-rule removes the rule of one meter (key meter:<name>) and leaves the others.
func testMeterRulesKeyedByMeter(t *testing.T, st store.Store) {
	pv := capability[store.PolicyVersions](t, st)
	out := billing.RuleSpec{Type: "meter", Spec: "meter: network.outgoing.bytes\nprice: \"0.05\"\n"}
	in := billing.RuleSpec{Type: "meter", Spec: "meter: network.incoming.bytes\nprice: \"0.01\"\n"}
	if err := st.PutPolicies(ctx, []billing.Policy{{Name: "m", Currency: "EUR", Rules: []billing.RuleSpec{out, in}}}); err != nil {
		t.Fatalf("two meter rules for two meters: %v", err)
	}
	twice := billing.Policy{Name: "m2", Currency: "EUR", Rules: []billing.RuleSpec{out, out}}
	if err := st.PutPolicies(ctx, []billing.Policy{twice}); err == nil {
		t.Fatal("two rules for the same meter were accepted")
	}
	cheaper := billing.RuleSpec{Type: "meter", Spec: "meter: network.outgoing.bytes\nprice: \"0.04\"\n"}
	v2, err := pv.AddRule(ctx, "m", cheaper, day(10, 10))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v2.Rules, []billing.RuleSpec{cheaper, in}) {
		t.Fatalf("AddRule of an existing meter → rules %+v, want it replaced in place", v2.Rules)
	}
	v3, err := pv.RemoveRule(ctx, "m", "meter:network.incoming.bytes", day(10, 20))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v3.Rules, []billing.RuleSpec{cheaper}) {
		t.Fatalf("RemoveRule meter:network.incoming.bytes → rules %+v", v3.Rules)
	}
}
