using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace NetStream.Tests.PublicApi;

/// <summary>
/// The public surface of an assembly as sorted one-line signatures in C# spelling: every visible type and every
/// public member, plus the protected members of unsealed types. Lines sort by the qualified name (leading modifiers
/// such as <c>static</c> ignored), so a type's members follow its own line.
/// </summary>
internal static class PublicApiListing
{
    public static IReadOnlyList<string> Of(Assembly assembly) =>
        assembly.GetTypes()
            .Where(IsVisible)
            .SelectMany(Lines)
            .OrderBy(line => line.Key, StringComparer.Ordinal)
            .ThenBy(line => line.Text, StringComparer.Ordinal)
            .Select(line => line.Text)
            .ToList();

    private readonly record struct Line(string Key, string Text)
    {
        public static Line Of(string modifiers, string key) => new(key, modifiers.Length == 0 ? key : $"{modifiers} {key}");
    }

    private static bool IsVisible(Type type) =>
        type.IsPublic
        || (type.IsNested && IsVisible(type.DeclaringType!)
            && (type.IsNestedPublic || (!type.DeclaringType!.IsSealed && (type.IsNestedFamily || type.IsNestedFamORAssem))));

    private static IEnumerable<Line> Lines(Type type)
    {
        var name = TypeNames.Declaration(type);
        if (type.IsSubclassOf(typeof(Delegate)))
        {
            var invoke = type.GetMethod("Invoke")!;
            yield return new Line(name, $"{name}: delegate ({Signatures.Parameters(invoke)}) -> {Signatures.Return(invoke)}");
            yield break;
        }

        var constraints = type.IsGenericTypeDefinition
            ? string.Concat(type.GetGenericArguments().Select(TypeNames.Constraints))
            : "";
        yield return new Line(name, $"{name}: {Kind(type)}{Bases(type)}{constraints}");
        const BindingFlags declared = BindingFlags.DeclaredOnly | BindingFlags.Public | BindingFlags.NonPublic
            | BindingFlags.Instance | BindingFlags.Static;
        if (type.IsEnum)
        {
            foreach (var field in type.GetFields(BindingFlags.Public | BindingFlags.Static))
            {
                var value = Convert.ToString(field.GetRawConstantValue(), CultureInfo.InvariantCulture);
                yield return Line.Of("", $"{name}.{field.Name} = {value}");
            }

            yield break;
        }

        foreach (var member in type.GetMembers(declared))
        {
            if (member.Name.Contains('<', StringComparison.Ordinal) || member is Type)
            {
                continue; // compiler-generated (a record's <Clone>$); nested types get their own lines
            }

            var line = member switch
            {
                ConstructorInfo c when !c.IsStatic && Visible(c) => Signatures.Constructor(name, c),
                MethodInfo m when Visible(m) && (!m.IsSpecialName || m.Name.StartsWith("op_", StringComparison.Ordinal))
                    => Signatures.Method(name, m),
                PropertyInfo p when Accessors(p).Any(Visible) => Signatures.Property(name, p),
                FieldInfo f when Visible(f) => Signatures.Field(name, f),
                EventInfo e when Visible(e.AddMethod!) => Signatures.Event(name, e),
                _ => (Line?)null,
            };
            if (line is { } l)
            {
                yield return l;
            }
        }
    }

    internal static IEnumerable<MethodInfo> Accessors(PropertyInfo property) =>
        new[] { property.GetMethod, property.SetMethod }.OfType<MethodInfo>();

    // Public, or protected where a user can derive from the type.
    internal static bool Visible(MethodBase method) =>
        method.IsPublic || (!method.DeclaringType!.IsSealed && (method.IsFamily || method.IsFamilyOrAssembly));

    private static bool Visible(FieldInfo field) =>
        field.IsPublic || (!field.DeclaringType!.IsSealed && (field.IsFamily || field.IsFamilyOrAssembly));

    private static string Kind(Type type)
    {
        if (type.IsInterface)
        {
            return "interface";
        }

        if (type.IsEnum)
        {
            var underlying = Enum.GetUnderlyingType(type);
            return (type.IsDefined(typeof(FlagsAttribute)) ? "[Flags] enum" : "enum")
                + (underlying == typeof(int) ? "" : " : " + TypeNames.Of(underlying));
        }

        var isRecord = type.GetMethod("PrintMembers", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
            ?.IsDefined(typeof(CompilerGeneratedAttribute)) == true;
        if (type.IsValueType)
        {
            var modifiers = (type.IsDefined(typeof(IsReadOnlyAttribute)) ? "readonly " : "")
                + (type.IsByRefLike ? "ref " : "");
            return modifiers + (isRecord ? "record struct" : "struct");
        }

        var modifier = type switch
        {
            { IsAbstract: true, IsSealed: true } => "static ",
            { IsAbstract: true } => "abstract ",
            { IsSealed: true } => "sealed ",
            _ => "",
        };
        return modifier + (isRecord ? "record" : "class");
    }

    private static string Bases(Type type)
    {
        var bases = new List<string>();
        if (type.BaseType is { } baseType && baseType != typeof(object) && baseType != typeof(ValueType) && baseType != typeof(Enum))
        {
            bases.Add("extends " + TypeNames.Of(baseType));
        }

        // An enum's IComparable, IConvertible, ... come with every enum.
        var interfaces = type.GetInterfaces()
            .Where(i => i.IsVisible && !type.IsEnum)
            .Select(i => TypeNames.Of(i))
            .Order(StringComparer.Ordinal)
            .ToList();
        if (interfaces.Count > 0)
        {
            bases.Add("implements " + string.Join(", ", interfaces));
        }

        return bases.Count == 0 ? "" : ", " + string.Join(", ", bases);
    }

    /// <summary>The signature lines of members.</summary>
    private static class Signatures
    {
        private static readonly Dictionary<string, string> Operators = new(StringComparer.Ordinal)
        {
            ["op_Equality"] = "operator ==", ["op_Inequality"] = "operator !=",
            ["op_LessThan"] = "operator <", ["op_GreaterThan"] = "operator >",
            ["op_LessThanOrEqual"] = "operator <=", ["op_GreaterThanOrEqual"] = "operator >=",
            ["op_Implicit"] = "implicit operator", ["op_Explicit"] = "explicit operator",
            ["op_Addition"] = "operator +", ["op_Subtraction"] = "operator -",
            ["op_BitwiseAnd"] = "operator &", ["op_BitwiseOr"] = "operator |",
            ["op_True"] = "operator true", ["op_False"] = "operator false",
        };

        public static Line Constructor(string type, ConstructorInfo constructor) =>
            Line.Of(Access(constructor), $"{type}.{TypeNames.Simple(constructor.DeclaringType!)}({Parameters(constructor)})");

        public static Line Method(string type, MethodInfo method)
        {
            var name = Operators.GetValueOrDefault(method.Name, method.Name);
            var generics = method.IsGenericMethodDefinition
                ? "<" + string.Join(", ", method.GetGenericArguments().Select(a => a.Name)) + ">"
                : "";
            var constraints = method.IsGenericMethodDefinition
                ? string.Concat(method.GetGenericArguments().Select(TypeNames.Constraints))
                : "";
            return Line.Of(
                Modifiers(method),
                $"{type}.{name}{generics}({Parameters(method)}) -> {Return(method)}{constraints}");
        }

        public static Line Property(string type, PropertyInfo property)
        {
            var accessors = Accessors(property).Where(Visible).ToList();
            var main = accessors[0];
            var access = Access(main);
            var parts = accessors.Select(a =>
            {
                var accessorAccess = Access(a);
                var prefix = accessorAccess == access ? "" : accessorAccess + " ";
                var verb = a == property.GetMethod ? "get"
                    : a.ReturnParameter.GetRequiredCustomModifiers().Contains(typeof(IsExternalInit)) ? "init" : "set";
                return prefix + verb + ";";
            });
            var indexer = property.GetIndexParameters();
            var name = indexer.Length == 0 ? property.Name : $"this[{Parameters(indexer)}]";
            var required = property.IsDefined(typeof(RequiredMemberAttribute)) ? "required " : "";
            var nullability = new NullabilityInfoContext().Create(property);
            return Line.Of(
                (Modifiers(main) + " " + required).Trim(),
                $"{type}.{name} {{ {string.Join(" ", parts)} }} -> {TypeNames.Of(property.PropertyType, nullability)}");
        }

        public static Line Field(string type, FieldInfo field)
        {
            var fieldType = TypeNames.Of(field.FieldType, new NullabilityInfoContext().Create(field));
            var access = field.IsPublic ? "" : "protected";
            if (field.IsLiteral)
            {
                return Line.Of((access + " const").Trim(), $"{type}.{field.Name} = {Value(field.GetRawConstantValue(), field.FieldType)} -> {fieldType}");
            }

            var modifiers = string.Join(" ", new[] { access, field.IsStatic ? "static" : "", field.IsInitOnly ? "readonly" : "" }
                .Where(m => m.Length > 0));
            return Line.Of(modifiers, $"{type}.{field.Name} -> {fieldType}");
        }

        public static Line Event(string type, EventInfo @event) =>
            Line.Of(
                (Modifiers(@event.AddMethod!) + " event").Trim(),
                $"{type}.{@event.Name} -> {TypeNames.Of(@event.EventHandlerType!, new NullabilityInfoContext().Create(@event))}");

        public static string Return(MethodInfo method) =>
            TypeNames.Of(method.ReturnType, new NullabilityInfoContext().Create(method.ReturnParameter));

        public static string Parameters(MethodBase method)
        {
            var text = Parameters(method.GetParameters());
            return method.IsDefined(typeof(ExtensionAttribute)) ? "this " + text : text;
        }

        private static string Parameters(ParameterInfo[] parameters)
        {
            var context = new NullabilityInfoContext();
            return string.Join(", ", parameters.Select(p =>
            {
                var type = p.ParameterType;
                var modifier = type.IsByRef
                    ? p.IsOut ? "out " : p.IsIn ? "in " : "ref "
                    : p.IsDefined(typeof(ParamArrayAttribute)) ? "params " : "";
                var text = $"{modifier}{TypeNames.Of(type, context.Create(p))} {p.Name}";
                return p.HasDefaultValue ? $"{text} = {Value(p.DefaultValue, type)}" : text;
            }));
        }

        private static string Value(object? value, Type type)
        {
            if (value is null)
            {
                return type.IsValueType && Nullable.GetUnderlyingType(type) is null ? "default" : "null";
            }

            var enumType = Nullable.GetUnderlyingType(type) ?? type;
            if (enumType.IsEnum)
            {
                var member = Enum.ToObject(enumType, value);
                return Enum.IsDefined(enumType, member)
                    ? $"{TypeNames.Of(enumType)}.{member}"
                    : $"({TypeNames.Of(enumType)}){Convert.ToString(value, CultureInfo.InvariantCulture)}";
            }

            return value switch
            {
                string s => $"\"{s}\"",
                bool b => b ? "true" : "false",
                char c => $"'{c}'",
                _ => Convert.ToString(value, CultureInfo.InvariantCulture)!,
            };
        }

        private static string Access(MethodBase method) => method.IsPublic ? "" : "protected";

        private static string Modifiers(MethodInfo method)
        {
            var inheritance = method switch
            {
                _ when method.DeclaringType!.IsInterface => method.IsStatic && method.IsAbstract ? "abstract" : "",
                { IsStatic: true } => "",
                { IsAbstract: true } => "abstract",
                _ when method.GetBaseDefinition() != method => method.IsFinal ? "sealed override" : "override",
                { IsVirtual: true, IsFinal: false } => "virtual",
                _ => "",
            };
            var parts = new[] { Access(method), method.IsStatic ? "static" : "", inheritance };
            return string.Join(" ", parts.Where(p => p.Length > 0));
        }
    }
}
